package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

const streamSecretsMethod = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets"

var sdsStreamDesc = &grpc.StreamDesc{StreamName: "StreamSecrets", ServerStreams: true, ClientStreams: true}

type connOptions struct {
	conns        int
	streamWindow int32
	connWindow   int32
}

// dialAll opens the HTTP/2 connections and waits until each is READY, so that
// scenario timings measure streams, not TCP/HTTP2 handshakes.
func dialAll(ctx context.Context, addr string, o connOptions) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, o.conns)
	for i := 0; i < o.conns; i++ {
		cc, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// One response per stream is small, but a fan-out sends one to every
			// stream at once (10k x ~1.7 KB on one connection): a large
			// connection window keeps the server from stalling on our
			// WINDOW_UPDATEs. Setting windows turns off grpc-go's BDP probing.
			grpc.WithInitialWindowSize(o.streamWindow),
			grpc.WithInitialConnWindowSize(o.connWindow),
			grpc.WithReadBufferSize(256<<10),
			grpc.WithWriteBufferSize(64<<10),
			// No retry buffering: an SDS stream is never replayed, Envoy reconnects itself.
			grpc.WithDisableRetry(),
		)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, cc)
		cc.Connect()
	}
	for i, cc := range conns {
		for {
			s := cc.GetState()
			if s == connectivity.Ready {
				break
			}
			if s == connectivity.TransientFailure {
				closeAll(conns)
				return nil, fmt.Errorf("connection %d to %s failed (is the server listening?)", i, addr)
			}
			if !cc.WaitForStateChange(ctx, s) {
				closeAll(conns)
				return nil, fmt.Errorf("connection %d to %s not ready before the deadline (state %s)", i, addr, s)
			}
		}
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, cc := range conns {
		_ = cc.Close()
	}
}

// sdsStream is one Envoy SDS subscription: one gRPC stream, one secret name.
// Only its own goroutine writes the non-atomic fields after start.
type sdsStream struct {
	idx    int
	name   string
	conn   *grpc.ClientConn
	nodeID string

	sentAt  int64 // unix ns, first request handed to gRPC
	firstAt int64 // unix ns, first response received

	lastVersion atomic.Pointer[string]
	responses   atomic.Int64
	epochSeen   int64

	// soak only: the current stream's cancel, closed when its goroutine ends, and
	// whether it has had its first response since it was (re)opened.
	cancel context.CancelFunc
	done   chan struct{}
	up     atomic.Bool
}

// epoch is one rotation being measured: every stream waits for a version
// different from its baseline.
type epoch struct {
	id        int64
	baseline  []string
	arrivals  []int64 // unix ns of the first changed-version response, per stream
	remaining atomic.Int64
	done      chan struct{}
}

type fleet struct {
	streams    []*sdsStream
	cluster    string
	nodeOnAcks bool

	firstRemaining atomic.Int64
	firstDone      chan struct{}

	current atomic.Pointer[epoch]

	errOnce        sync.Once
	errCh          chan struct{}
	firstErr       error
	badResponses   atomic.Int64
	totalResponses atomic.Int64
}

func newFleet(conns []*grpc.ClientConn, n int, names string, nodePrefix, cluster string, nodeOnAcks bool) *fleet {
	f := &fleet{
		streams:    make([]*sdsStream, n),
		cluster:    cluster,
		nodeOnAcks: nodeOnAcks,
		firstDone:  make(chan struct{}),
		errCh:      make(chan struct{}),
	}
	f.firstRemaining.Store(int64(n))
	for i := range f.streams {
		name := "bench-0"
		if names == "distinct" {
			name = "bench-" + strconv.Itoa(i)
		}
		c := i % len(conns) // round-robin over connections
		f.streams[i] = &sdsStream{
			idx:    i,
			name:   name,
			conn:   conns[c],
			nodeID: nodePrefix + strconv.Itoa(c), // one "Envoy" per connection
		}
	}
	return f
}

func (f *fleet) fail(err error) {
	f.errOnce.Do(func() {
		f.firstErr = err
		close(f.errCh)
	})
}

// start opens every stream at once (one goroutine each) and returns.
func (f *fleet) start(ctx context.Context) {
	for _, s := range f.streams {
		go f.run(ctx, s)
	}
}

func (f *fleet) run(ctx context.Context, s *sdsStream) {
	first, err := firstRequest(s.nodeID, f.cluster, s.name)
	if err != nil {
		f.fail(err)
		return
	}
	prefix, err := ackPrefix(s.nodeID, f.cluster, s.name, f.nodeOnAcks)
	if err != nil {
		f.fail(err)
		return
	}
	cs, err := s.conn.NewStream(ctx, sdsStreamDesc, streamSecretsMethod)
	if err != nil {
		if ctx.Err() == nil {
			f.fail(fmt.Errorf("stream %d (%s): open: %w", s.idx, s.name, err))
		}
		return
	}
	s.sentAt = time.Now().UnixNano()
	if err := cs.SendMsg(first); err != nil {
		if ctx.Err() == nil {
			f.fail(fmt.Errorf("stream %d (%s): send first request: %w", s.idx, s.name, err))
		}
		return
	}
	var r respView
	r.keepFirst = true
	for {
		if err := cs.RecvMsg(&r); err != nil {
			if ctx.Err() == nil {
				f.fail(fmt.Errorf("stream %d (%s): server closed the stream: %w", s.idx, s.name, err))
			}
			return
		}
		now := time.Now().UnixNano()
		f.totalResponses.Add(1)
		s.responses.Add(1)
		if r.typeURL != secretTypeURL {
			// Envoy drops a response of another type (no ACK, no NACK).
			f.badResponses.Add(1)
			f.fail(fmt.Errorf("stream %d (%s): response type_url %q, want %q", s.idx, s.name, r.typeURL, secretTypeURL))
			continue
		}
		if r.resources != 1 {
			f.badResponses.Add(1)
			f.fail(fmt.Errorf("stream %d (%s): response with %d resources, want 1 (does the server have %q?)", s.idx, s.name, r.resources, s.name))
			continue
		}
		if r.keepFirst {
			if err := verifySecret(r.first, s.name); err != nil {
				f.badResponses.Add(1)
				f.fail(fmt.Errorf("stream %d (%s): first response: %w", s.idx, s.name, err))
			}
			r.keepFirst, r.first = false, nil
		}
		v := r.version
		s.lastVersion.Store(&v)
		if !s.up.Load() {
			s.up.Store(true)
		}
		if s.firstAt == 0 {
			s.firstAt = now
			if f.firstRemaining.Add(-1) == 0 {
				close(f.firstDone)
			}
		}
		if ep := f.current.Load(); ep != nil && s.epochSeen != ep.id && v != ep.baseline[s.idx] {
			s.epochSeen = ep.id
			ep.arrivals[s.idx] = now
			if ep.remaining.Add(-1) == 0 {
				close(ep.done)
			}
		}
		// ACK: version and nonce of this response, nothing else new.
		if err := cs.SendMsg(ack(prefix, r.version, r.nonce)); err != nil {
			if ctx.Err() == nil {
				f.fail(fmt.Errorf("stream %d (%s): send ACK: %w", s.idx, s.name, err))
			}
			return
		}
	}
}

// waitFirst waits until every stream has had its first response.
func (f *fleet) waitFirst(ctx context.Context) error {
	select {
	case <-f.firstDone:
		return nil
	case <-f.errCh:
		return f.firstErr
	case <-ctx.Done():
		err := fmt.Errorf("deadline: %d of %d streams had no first response yet", f.firstRemaining.Load(), len(f.streams))
		if len(f.streams) > 1 && f.streams[1].name != f.streams[0].name {
			err = fmt.Errorf("%w (slow server, or missing names: -names distinct needs bench-0..bench-%d)", err, len(f.streams)-1)
		}
		return err
	}
}

// newEpoch snapshots every stream's current version as its baseline and
// installs the epoch; call only while no update is in flight.
func (f *fleet) newEpoch(id int64) *epoch {
	ep := &epoch{
		id:       id,
		baseline: make([]string, len(f.streams)),
		arrivals: make([]int64, len(f.streams)),
		done:     make(chan struct{}),
	}
	for i, s := range f.streams {
		if v := s.lastVersion.Load(); v != nil {
			ep.baseline[i] = *v
		}
	}
	ep.remaining.Store(int64(len(f.streams)))
	f.current.Store(ep)
	return ep
}

func (f *fleet) waitEpoch(ctx context.Context, ep *epoch) error {
	select {
	case <-ep.done:
		return nil
	case <-f.errCh:
		return f.firstErr
	case <-ctx.Done():
		return fmt.Errorf("deadline: %d of %d streams had not received the new version", ep.remaining.Load(), len(f.streams))
	}
}
