package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// soakFigures is the soak scenario's result: streams stay open for -soak-duration,
// the server rotates every name every -rotate-every (each rotation timed as in
// rotate-all), and -reconnect-per-minute of the streams close and reopen per minute,
// spread evenly. A stream is lost when, at the end, it has no open subscription that
// answered, or a rotation never reached it (the run then fails at its deadline).
type soakFigures struct {
	Seconds                float64  `json:"seconds"`
	Rotations              int      `json:"rotations"`
	Reconnects             int64    `json:"reconnects"`
	StreamsLost            int      `json:"streamsLost"`
	ServerStreamsEnd       *float64 `json:"serverStreamsEnd,omitempty"`
	RSSAfterFirstRotation  float64  `json:"rssAfterFirstRotation"`
	RSSEnd                 float64  `json:"rssEnd"`
	HeapAfterFirstRotation float64  `json:"heapAfterFirstRotation"`
	HeapEnd                float64  `json:"heapEnd"`
	TimeToAllMs            dist     `json:"timeToAllMs"`
}

// startCancellable opens every stream at once, each with its own context so that
// reconnect can close it.
func (f *fleet) startCancellable(ctx context.Context) {
	for _, s := range f.streams {
		f.startStream(ctx, s)
	}
}

func (f *fleet) startStream(ctx context.Context, s *sdsStream) {
	sctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.done = make(chan struct{})
	done := s.done
	go func() {
		defer close(done)
		f.run(sctx, s)
	}()
}

// reconnect closes stream s (as an Envoy that restarts a subscription) and opens it
// again once its goroutine has ended, so only one goroutine ever writes its fields.
func (f *fleet) reconnect(ctx context.Context, s *sdsStream) {
	s.cancel()
	<-s.done
	s.up.Store(false)
	f.startStream(ctx, s)
}

func runSoak(ctx context.Context, o *options, f *fleet, ctl *control, res *result, srvCPU func() int64) error {
	fig := &soakFigures{}
	res.Soak = fig
	start := time.Now()
	end := start.Add(o.soakDuration)
	// A stream's own context outlives the scenario deadline's: cancelling it must not
	// look like a server error.
	streamCtx := context.Background()

	var reconnects atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if n := o.reconnectPerMinute * float64(len(f.streams)); n > 0 {
		interval := time.Duration(float64(time.Minute) / n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(1, uint64(len(f.streams))))
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					f.reconnect(streamCtx, f.streams[rng.IntN(len(f.streams))])
					reconnects.Add(1)
				}
			}
		}()
	}
	finish := func() {
		close(stop)
		wg.Wait()
		fig.Reconnects = reconnects.Load()
		fig.Seconds = round3(time.Since(start).Seconds())
	}

	var times []int64
	for rep := int64(1); ; rep++ {
		next := start.Add(time.Duration(rep) * o.rotateEvery)
		if next.After(end) {
			break
		}
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			finish()
			return deadlineErr(o)
		}
		rot, err := rotation(ctx, o, f, ctl, rep, srvCPU)
		if err != nil {
			finish()
			if ep := f.current.Load(); ep != nil {
				fig.StreamsLost = int(ep.remaining.Load())
			}
			return fmt.Errorf("soak rotation %d: %w", rep, err)
		}
		res.Rotations = append(res.Rotations, rot)
		times = append(times, int64(rot.TimeToAllMs*1e6))
		fig.Rotations++
		if rep == 1 {
			st, err := ctl.stats(ctx, true)
			if err != nil {
				finish()
				return err
			}
			fig.RSSAfterFirstRotation, fig.HeapAfterFirstRotation = st["rssBytes"], st["heapInuse"]
		}
	}
	if err := sleepCtx(ctx, time.Until(end)); err != nil {
		finish()
		return deadlineErr(o)
	}
	finish()
	fig.TimeToAllMs = distribution(times)

	// Every stream must be open and answered; reconnects still opening get 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		lost := 0
		for _, s := range f.streams {
			if !s.up.Load() {
				lost++
			}
		}
		fig.StreamsLost = lost
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return deadlineErr(o)
		}
	}
	st, err := ctl.stats(ctx, true)
	if err != nil {
		return err
	}
	fig.RSSEnd, fig.HeapEnd = st["rssBytes"], st["heapInuse"]
	if v, ok := st["streams"]; ok {
		fig.ServerStreamsEnd = &v
	}
	if fig.StreamsLost > 0 {
		return fmt.Errorf("soak: %d of %d streams lost (no answer on their open subscription)", fig.StreamsLost, len(f.streams))
	}
	return nil
}
