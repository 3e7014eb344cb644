// Command sds-load plays a fleet of Envoys against an SDS server, speaking only
// the wire protocol (SotW StreamSecrets), and measures how fast the server
// answers new streams, pushes rotations and how much memory idle streams cost.
// It drives both our Node server and the go-control-plane peer (sds-peer)
// through the same control contract (POST /rotate, GET /stats).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

type options struct {
	addr       string
	control    string
	streams    int
	conns      int
	names      string
	scenario   string
	reps       int
	json       bool
	timeout    time.Duration
	settle     time.Duration
	repPause   time.Duration
	nodePrefix string
	cluster    string
	nodeOnAcks bool
	serverPID  int
	streamWin  int
	connWin    int

	soakDuration       time.Duration
	rotateEvery        time.Duration
	reconnectPerMinute float64
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "SDS server host:port (h2c)")
	flag.StringVar(&o.control, "control", "", "server control endpoint, e.g. http://127.0.0.1:9901 (POST /rotate, GET /stats)")
	flag.IntVar(&o.streams, "streams", 1000, "number of SDS streams (one secret name each)")
	flag.IntVar(&o.conns, "conns", 1, "HTTP/2 connections; streams are spread round-robin")
	flag.StringVar(&o.names, "names", "single", "single: every stream asks for bench-0; distinct: stream i asks for bench-i")
	flag.StringVar(&o.scenario, "scenario", "storm", "storm | fanout | rotate-all | idle-memory")
	flag.IntVar(&o.reps, "reps", 1, "rotations measured on the same streams (fanout, rotate-all)")
	flag.BoolVar(&o.json, "json", false, "print one JSON object on stdout")
	flag.DurationVar(&o.timeout, "timeout", 120*time.Second, "deadline for the whole scenario")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "idle-memory: wait after the last first response before GET /stats")
	flag.DurationVar(&o.repPause, "rep-pause", time.Second, "fanout/rotate-all: quiet time before each rotation (lets the server take every ACK)")
	flag.StringVar(&o.nodePrefix, "node-prefix", "sds-load-", "node.id prefix; one node per connection (<prefix><conn index>)")
	flag.StringVar(&o.cluster, "cluster", "sds-load", "node.cluster")
	flag.BoolVar(&o.nodeOnAcks, "node-on-acks", false, "send node on every request (Envoy default) instead of the first only (set_node_on_first_message_only)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "if set, report the server process's CPU time per phase (from /proc)")
	flag.IntVar(&o.streamWin, "stream-window", 1<<20, "client HTTP/2 stream flow-control window (bytes)")
	flag.IntVar(&o.connWin, "conn-window", 64<<20, "client HTTP/2 connection flow-control window (bytes)")
	flag.DurationVar(&o.soakDuration, "soak-duration", 10*time.Minute, "soak: how long streams stay open")
	flag.DurationVar(&o.rotateEvery, "rotate-every", 30*time.Second, "soak: a rotation of every name this often")
	flag.Float64Var(&o.reconnectPerMinute, "reconnect-per-minute", 0.01, "soak: fraction of the streams that close and reopen per minute")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this client to the file (for tuning the client)")
	flag.Parse()

	res := &result{Tool: "sds-load", Scenario: o.scenario, Addr: o.addr, Control: o.control,
		Streams: o.streams, Conns: o.conns, Names: o.names, Reps: o.reps,
		StartedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	if err := o.validate(); err != nil {
		finish(&o, res, err, 1)
	}
	debug.SetGCPercent(400) // memory is plentiful, CPU is shared with the server
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			finish(&o, res, err, 1)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			finish(&o, res, err, 1)
		}
		stopProfile = func() { pprof.StopCPUProfile(); _ = pf.Close() }
	}

	start := time.Now()
	cpu0 := cpuNanos()
	err := run(&o, res)
	res.WallMs = ms(time.Since(start).Nanoseconds())
	res.Client = &clientUsage{CPUMs: ms(cpuNanos() - cpu0), MaxRSSBytes: maxRSSBytes()}
	res.LoadAvg = loadavg()
	code := 0
	if err != nil {
		code = 2
	}
	finish(&o, res, err, code)
}

func (o *options) validate() error {
	switch {
	case o.addr == "":
		return errors.New("-addr is required")
	case o.streams < 1:
		return errors.New("-streams must be >= 1")
	case o.conns < 1:
		return errors.New("-conns must be >= 1")
	case o.names != "single" && o.names != "distinct":
		return fmt.Errorf("-names must be single or distinct, not %q", o.names)
	case o.reps < 1:
		return errors.New("-reps must be >= 1")
	case o.streamWin < 64<<10 || o.connWin < 64<<10 || o.streamWin > math.MaxInt32 || o.connWin > math.MaxInt32:
		return errors.New("-stream-window and -conn-window must be between 64 KiB and 2 GiB")
	}
	switch o.scenario {
	case "storm":
	case "fanout", "rotate-all", "idle-memory", "soak":
		if o.control == "" {
			return fmt.Errorf("-scenario %s needs -control", o.scenario)
		}
		if o.scenario == "soak" && (o.soakDuration <= 0 || o.rotateEvery <= 0 || o.reconnectPerMinute < 0) {
			return errors.New("-soak-duration and -rotate-every must be > 0, -reconnect-per-minute >= 0")
		}
	default:
		return fmt.Errorf("-scenario must be storm, fanout, rotate-all, idle-memory or soak, not %q", o.scenario)
	}
	return nil
}

func run(o *options, res *result) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctl := newControl(o.control)
	srvCPU := func() int64 { return procCPUNanos(o.serverPID) }
	var f *fleet
	defer func() {
		if f != nil {
			res.BadResponses = f.badResponses.Load()
			res.TotalResponses = f.totalResponses.Load()
		}
	}()

	var baseline map[string]float64
	if o.scenario == "idle-memory" {
		var err error
		if baseline, err = ctl.stats(ctx, true); err != nil {
			return err
		}
	}

	conns, err := dialAll(ctx, o.addr, connOptions{conns: o.conns, streamWindow: int32(o.streamWin), connWindow: int32(o.connWin)})
	if err != nil {
		return err
	}
	// Streams live until the process exits: closing 10k streams gracefully costs
	// seconds of CPU on both sides and measures nothing; the kernel closes the
	// sockets when we exit and the server sees the connections go.
	streamCtx := context.Background()

	// Open every stream at once; t0 just before the first goroutine starts.
	f = newFleet(conns, o.streams, o.names, o.nodePrefix, o.cluster, o.nodeOnAcks)
	c0, s0 := cpuNanos(), srvCPU()
	t0 := time.Now().UnixNano()
	if o.scenario == "soak" {
		f.startCancellable(streamCtx)
	} else {
		f.start(streamCtx)
	}
	if err := f.waitFirst(ctx); err != nil {
		return fmt.Errorf("opening %d streams (-timeout %s): %w", o.streams, o.timeout, err)
	}
	res.Open = computeOpen(f, t0)
	res.Open.ClientCPUMs = ms(cpuNanos() - c0)
	res.Open.ServerCPUMs = cpuDelta(s0, srvCPU())

	switch o.scenario {
	case "fanout", "rotate-all":
		for rep := 1; rep <= o.reps; rep++ {
			if err := sleepCtx(ctx, o.repPause); err != nil {
				return fmt.Errorf("before rotation %d of %d: %w", rep, o.reps, deadlineErr(o))
			}
			rot, err := rotation(ctx, o, f, ctl, int64(rep), srvCPU)
			if err != nil {
				return fmt.Errorf("rotation %d of %d (-timeout %s): %w", rep, o.reps, o.timeout, err)
			}
			res.Rotations = append(res.Rotations, rot)
		}
		// Count responses that arrived after each rotation completed (a server
		// that pushes twice, or re-sends on ACK).
		if err := sleepCtx(ctx, o.repPause); err == nil {
			last := res.Rotations[len(res.Rotations)-1]
			last.ExtraResponses = f.totalResponses.Load() - last.responsesBefore - int64(o.streams)
		}
		for i := 0; i+1 < len(res.Rotations); i++ {
			r := res.Rotations[i]
			r.ExtraResponses = res.Rotations[i+1].responsesBefore - r.responsesBefore - int64(o.streams)
		}
		res.Summary = summarize(res.Rotations)
	case "soak":
		if err := runSoak(ctx, o, f, ctl, res, srvCPU); err != nil {
			return err
		}
	case "idle-memory":
		if err := sleepCtx(ctx, o.settle); err != nil {
			return deadlineErr(o)
		}
		loaded, err := ctl.stats(ctx, true)
		if err != nil {
			return err
		}
		res.Memory = computeMemory(baseline, loaded, o.streams)
	}
	if ctl != nil {
		if st, err := ctl.stats(ctx, false); err == nil {
			res.ServerStats = st
		}
	}
	return nil
}

// rotation asks the server to rotate (all names) and times the arrival of the
// new version on every stream.
func rotation(ctx context.Context, o *options, f *fleet, ctl *control, id int64, srvCPU func() int64) (*rotationFigures, error) {
	ep := f.newEpoch(id)
	before := f.totalResponses.Load()
	c0, s0 := cpuNanos(), srvCPU()
	clientT0 := time.Now().UnixNano()
	rr, err := ctl.rotate(ctx, "all")
	postDone := time.Now().UnixNano()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (during POST /rotate)", deadlineErr(o))
		}
		return nil, err
	}
	if err := f.waitEpoch(ctx, ep); err != nil {
		return nil, err
	}
	rot := &rotationFigures{
		Rep:             id,
		RotateCallMs:    ms(postDone - clientT0),
		responsesBefore: before,
	}
	if rr.updateDurationNanos > 0 {
		rot.ServerUpdateMs = ms(rr.updateDurationNanos)
	}
	serverLat := make([]int64, len(ep.arrivals))
	clientLat := make([]int64, len(ep.arrivals))
	var last int64
	for i, a := range ep.arrivals {
		serverLat[i] = a - rr.updatedAtUnixNano
		clientLat[i] = a - clientT0
		if a > last {
			last = a
		}
	}
	rot.TimeToAllMs = ms(last - rr.updatedAtUnixNano)
	rot.ClientTimeToAllMs = ms(last - clientT0)
	rot.LatencyMs = distribution(serverLat)
	rot.ClientLatencyMs = distribution(clientLat)
	rot.ClientCPUMs = ms(cpuNanos() - c0)
	rot.ServerCPUMs = cpuDelta(s0, srvCPU())
	return rot, nil
}

func computeOpen(f *fleet, t0 int64) *openFigures {
	lat := make([]int64, len(f.streams))
	arr := make([]int64, len(f.streams))
	var last int64
	for i, s := range f.streams {
		lat[i] = s.firstAt - s.sentAt
		arr[i] = s.firstAt - t0
		if s.firstAt > last {
			last = s.firstAt
		}
	}
	return &openFigures{TotalMs: ms(last - t0), LatencyMs: distribution(lat), ArrivalMs: distribution(arr)}
}

func computeMemory(base, loaded map[string]float64, n int) *memoryFigures {
	m := &memoryFigures{Baseline: base, Loaded: loaded}
	if b, ok := base["rssBytes"]; ok {
		if l, ok := loaded["rssBytes"]; ok {
			m.RSSBytesDelta = l - b
			m.RSSBytesPerStream = round1((l - b) / float64(n))
		}
	}
	if b, ok := base["heapInuse"]; ok {
		if l, ok := loaded["heapInuse"]; ok {
			m.HeapInuseDelta = l - b
			m.HeapInusePerStream = round1((l - b) / float64(n))
		}
	}
	if s, ok := loaded["streams"]; ok {
		m.ServerStreams = &s
	}
	return m
}

func summarize(rots []*rotationFigures) *summary {
	pick := func(get func(*rotationFigures) float64) float64 {
		v := make([]float64, len(rots))
		for i, r := range rots {
			v[i] = get(r)
		}
		sort.Float64s(v)
		return v[(len(v)-1)/2] // lower median
	}
	return &summary{
		TimeToAllMs:       pick(func(r *rotationFigures) float64 { return r.TimeToAllMs }),
		P50Ms:             pick(func(r *rotationFigures) float64 { return r.LatencyMs.P50 }),
		P99Ms:             pick(func(r *rotationFigures) float64 { return r.LatencyMs.P99 }),
		MaxMs:             pick(func(r *rotationFigures) float64 { return r.LatencyMs.Max }),
		ClientTimeToAllMs: pick(func(r *rotationFigures) float64 { return r.ClientTimeToAllMs }),
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func deadlineErr(o *options) error {
	return fmt.Errorf("deadline: scenario did not finish within -timeout %s", o.timeout)
}

func cpuDelta(a, b int64) *float64 {
	if a < 0 || b < 0 {
		return nil
	}
	v := ms(b - a)
	return &v
}

// ---- figures and output ----

type dist struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type openFigures struct {
	TotalMs     float64  `json:"totalMs"`
	LatencyMs   dist     `json:"latencyMs"`
	ArrivalMs   dist     `json:"arrivalMs"`
	ClientCPUMs float64  `json:"clientCpuMs"`
	ServerCPUMs *float64 `json:"serverCpuMs,omitempty"`
}

type rotationFigures struct {
	Rep               int64    `json:"rep"`
	TimeToAllMs       float64  `json:"timeToAllMs"`
	LatencyMs         dist     `json:"latencyMs"`
	ClientTimeToAllMs float64  `json:"clientTimeToAllMs"`
	ClientLatencyMs   dist     `json:"clientLatencyMs"`
	RotateCallMs      float64  `json:"rotateCallMs"`
	ServerUpdateMs    float64  `json:"serverUpdateMs,omitempty"`
	ExtraResponses    int64    `json:"extraResponses"`
	ClientCPUMs       float64  `json:"clientCpuMs"`
	ServerCPUMs       *float64 `json:"serverCpuMs,omitempty"`

	responsesBefore int64
}

type summary struct {
	TimeToAllMs       float64 `json:"timeToAllMs"`
	P50Ms             float64 `json:"p50Ms"`
	P99Ms             float64 `json:"p99Ms"`
	MaxMs             float64 `json:"maxMs"`
	ClientTimeToAllMs float64 `json:"clientTimeToAllMs"`
}

type memoryFigures struct {
	Baseline           map[string]float64 `json:"baseline"`
	Loaded             map[string]float64 `json:"loaded"`
	RSSBytesDelta      float64            `json:"rssBytesDelta"`
	HeapInuseDelta     float64            `json:"heapInuseDelta"`
	RSSBytesPerStream  float64            `json:"rssBytesPerStream"`
	HeapInusePerStream float64            `json:"heapInusePerStream"`
	ServerStreams      *float64           `json:"serverStreams,omitempty"`
}

type clientUsage struct {
	CPUMs       float64 `json:"cpuMs"`
	MaxRSSBytes int64   `json:"maxRssBytes"`
}

type result struct {
	Tool           string             `json:"tool"`
	OK             bool               `json:"ok"`
	Error          string             `json:"error,omitempty"`
	Scenario       string             `json:"scenario"`
	Addr           string             `json:"addr"`
	Control        string             `json:"control,omitempty"`
	Streams        int                `json:"streams"`
	Conns          int                `json:"conns"`
	Names          string             `json:"names"`
	Reps           int                `json:"reps"`
	StartedAt      string             `json:"startedAt"`
	WallMs         float64            `json:"wallMs"`
	Open           *openFigures       `json:"open,omitempty"`
	Rotations      []*rotationFigures `json:"rotations,omitempty"`
	Summary        *summary           `json:"summary,omitempty"`
	Memory         *memoryFigures     `json:"memory,omitempty"`
	Soak           *soakFigures       `json:"soak,omitempty"`
	TotalResponses int64              `json:"totalResponses"`
	BadResponses   int64              `json:"badResponses"`
	ServerStats    map[string]float64 `json:"serverStats,omitempty"`
	Client         *clientUsage       `json:"client,omitempty"`
	LoadAvg        []float64          `json:"loadavg,omitempty"`
}

// stopProfile flushes the CPU profile, if one is being written.
var stopProfile = func() {}

func finish(o *options, res *result, err error, code int) {
	stopProfile()
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
		fmt.Fprintf(os.Stderr, "sds-load: %s: %v\n", o.scenario, err)
	}
	if o.json {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		printHuman(os.Stdout, res)
	}
	os.Exit(code)
}

func printHuman(w *os.File, r *result) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	d := func(x dist) string {
		return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms", x.P50, x.P99, x.Max, x.Mean)
	}
	status := "ok"
	if !r.OK {
		status = "FAILED: " + r.Error
	}
	p("sds-load %s: %d streams (%s names) over %d connections to %s: %s", r.Scenario, r.Streams, r.Names, r.Conns, r.Addr, status)
	if r.Open != nil {
		p("  open: all first responses %.1f ms after start; per stream %s", r.Open.TotalMs, d(r.Open.LatencyMs))
		p("        client CPU %.0f ms%s", r.Open.ClientCPUMs, optCPU(r.Open.ServerCPUMs))
	}
	for _, x := range r.Rotations {
		p("  rotation %d: all streams updated %.1f ms after the server's update (%.1f ms after the client's POST)", x.Rep, x.TimeToAllMs, x.ClientTimeToAllMs)
		p("        per stream %s; POST took %.1f ms; extra responses %d; client CPU %.0f ms%s", d(x.LatencyMs), x.RotateCallMs, x.ExtraResponses, x.ClientCPUMs, optCPU(x.ServerCPUMs))
	}
	if s := r.Summary; s != nil && len(r.Rotations) > 1 {
		p("  median of %d rotations: time to all %.1f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(r.Rotations), s.TimeToAllMs, s.P50Ms, s.P99Ms, s.MaxMs)
	}
	if m := r.Memory; m != nil {
		p("  memory: RSS +%.1f MiB (%.0f B/stream), heap in use +%.1f MiB (%.0f B/stream)",
			m.RSSBytesDelta/(1<<20), m.RSSBytesPerStream, m.HeapInuseDelta/(1<<20), m.HeapInusePerStream)
	}
	if k := r.Soak; k != nil {
		p("  soak: %.0f s, %d rotations (time to all: %s), %d reconnects, %d streams lost; RSS %.1f MiB after the first rotation, %.1f MiB at the end",
			k.Seconds, k.Rotations, d(k.TimeToAllMs), k.Reconnects, k.StreamsLost, k.RSSAfterFirstRotation/(1<<20), k.RSSEnd/(1<<20))
	}
	if len(r.ServerStats) > 0 {
		keys := make([]string, 0, len(r.ServerStats))
		for k := range r.ServerStats {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%.0f", k, r.ServerStats[k])
		}
		p("  server /stats: %s", strings.Join(parts, " "))
	}
	if r.Client != nil {
		p("  client: CPU %.0f ms, max RSS %.0f MiB; wall %.0f ms; responses %d (bad %d); loadavg %v",
			r.Client.CPUMs, float64(r.Client.MaxRSSBytes)/(1<<20), r.WallMs, r.TotalResponses, r.BadResponses, r.LoadAvg)
	}
}

func optCPU(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf(", server CPU %.0f ms", *v)
}

// distribution summarises durations in ns as milliseconds (nearest-rank percentiles).
func distribution(ns []int64) dist {
	if len(ns) == 0 {
		return dist{}
	}
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) int64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		if i < 0 {
			i = 0
		}
		return s[i]
	}
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return dist{P50: ms(rank(0.50)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1]), Mean: round3(sum / float64(len(s)) / 1e6)}
}

func ms(ns int64) float64 { return round3(float64(ns) / 1e6) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
func round1(v float64) float64 { return math.Round(v*10) / 10 }
