// Command sds-peer is the reference SDS server for the benchmark: plain
// go-control-plane (SotW server + LinearCache of Secrets), with the same control
// contract as our Node server (POST /rotate, GET /stats) so that one load
// client (sds-load) can drive both.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "SDS gRPC listen address (h2c)")
	control := flag.String("control", "127.0.0.1:0", "control HTTP listen address (POST /rotate, GET /stats)")
	secrets := flag.Int("secrets", 10000, "number of secrets, named bench-0 .. bench-(N-1)")
	maxStreams := flag.Uint("max-streams", 100000, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection")
	materials := flag.String("materials", "", "JSON file of distinct materials (bench/distinct-materials.ts): bench-i serves sets[generation % len(sets)][i]")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sds-peer: ")

	if *secrets < 1 {
		log.Fatal("-secrets must be >= 1")
	}
	sets, err := newMaterialSets(2)
	if err != nil {
		log.Fatalf("issuing certificates: %v", err)
	}

	p := &peer{
		names: make([]string, *secrets),
		sets:  sets,
		cache: cache.NewLinearCache(resource.SecretType),
	}
	if *materials != "" {
		if p.distinct, err = readDistinct(*materials, *secrets); err != nil {
			log.Fatalf("-materials: %v", err)
		}
	}
	for i := range p.names {
		p.names[i] = "bench-" + strconv.Itoa(i)
	}
	initial := make(map[string]types.Resource, len(p.names))
	for _, n := range p.names {
		initial[n] = p.secret(n, 0)
	}
	p.cache.SetResources(initial)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	callbacks := server.CallbackFuncs{
		StreamOpenFunc: func(context.Context, int64, string) error {
			p.streams.Add(1)
			return nil
		},
		StreamClosedFunc: func(int64, *core.Node) { p.streams.Add(-1) },
		DeltaStreamOpenFunc: func(context.Context, int64, string) error {
			p.streams.Add(1)
			return nil
		},
		DeltaStreamClosedFunc: func(int64, *core.Node) { p.streams.Add(-1) },
	}
	xds := server.NewServer(ctx, p.cache, callbacks)

	// grpc-go's defaults are tuned for request/response traffic. SDS is the
	// opposite: one long-lived stream per (Envoy, secret), thousands on one
	// connection. MaxConcurrentStreams is raised explicitly (Envoy opens one stream
	// per secret on a single connection), keepalive follows go-control-plane's own
	// example server (ping idle clients every 30 s, let clients ping every 30 s
	// even without streams). Flow-control windows stay at grpc-go's defaults
	// (64 KiB with BDP auto-tuning): the server only receives small requests/ACKs.
	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(uint32(*maxStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second, PermitWithoutStream: true}),
	)
	secretservice.RegisterSecretDiscoveryServiceServer(gs, xds)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xds)

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	clis, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatalf("listen %s: %v", *control, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/rotate", p.handleRotate)
	mux.HandleFunc("/stats", p.handleStats)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	go func() {
		if err := gs.Serve(lis); err != nil {
			log.Fatalf("grpc serve: %v", err)
		}
	}()
	go func() {
		if err := hs.Serve(clis); err != nil && err != http.ErrServerClosed {
			log.Fatalf("control serve: %v", err)
		}
	}()
	fmt.Printf("LISTENING %s\n", lis.Addr())
	fmt.Printf("CONTROL %s\n", clis.Addr())
	log.Printf("%d secrets, chain %d B + key %d B PEM, max %d streams/conn",
		len(p.names), len(sets[0].chainPEM), len(sets[0].keyPEM), *maxStreams)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	cancel()
	gs.Stop()
	_ = hs.Close()
}

type peer struct {
	names   []string
	sets    []material
	cache   *cache.LinearCache
	streams atomic.Int64

	distinct [][]material // -materials: one material per secret and generation

	mu         sync.Mutex // serialises rotations
	generation int
}

func (p *peer) secret(name string, generation int) *tlsv3.Secret {
	m := p.sets[generation%len(p.sets)]
	if p.distinct != nil {
		m = p.distinct[generation%len(p.distinct)][secretIndex(name)]
	}
	return &tlsv3.Secret{
		Name: name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: m.chainPEM}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: m.keyPEM}},
		}},
	}
}

// POST /rotate?names=all|bench-3[,bench-4...]
// Replies {"updatedAtUnixNano": <wall clock just before the cache update>,
// "updateDurationNanos": <time the cache update call took>, "names": <count>,
// "generation": <content set now served>} after the cache update returned.
func (p *peer) handleRotate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	arg := r.URL.Query().Get("names")
	if arg == "" {
		http.Error(w, "names=all or names=bench-0[,bench-1...] required", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	gen := p.generation + 1
	var names []string
	if arg == "all" {
		names = p.names
	} else {
		for _, n := range strings.Split(arg, ",") {
			i, err := strconv.Atoi(strings.TrimPrefix(n, "bench-"))
			if !strings.HasPrefix(n, "bench-") || err != nil || i < 0 || i >= len(p.names) {
				http.Error(w, "unknown secret "+strconv.Quote(n), http.StatusNotFound)
				return
			}
			names = append(names, n)
		}
	}
	// Build the new resources first: t0 covers only the cache update (and the
	// pushes it triggers), as it would for a store fed by a watcher.
	var start, end time.Time
	var err error
	if len(names) == 1 {
		res := p.secret(names[0], gen)
		start = time.Now()
		err = p.cache.UpdateResource(names[0], res)
		end = time.Now()
	} else {
		update := make(map[string]types.Resource, len(names))
		for _, n := range names {
			update[n] = p.secret(n, gen)
		}
		start = time.Now()
		err = p.cache.UpdateResources(update, nil)
		end = time.Now()
	}
	if err != nil {
		http.Error(w, "cache update: "+err.Error(), http.StatusInternalServerError)
		return
	}
	p.generation = gen
	writeJSON(w, map[string]any{
		"updatedAtUnixNano":   start.UnixNano(),
		"updateDurationNanos": end.Sub(start).Nanoseconds(),
		"names":               len(names),
		"generation":          gen,
	})
}

// GET /stats[?gc=1] -> {"rssBytes","heapInuse","goroutines","streams"}.
// With gc=1 a full GC runs first, so heapInuse is live data rather than
// live data plus garbage not yet collected.
func (p *peer) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, map[string]any{
		"rssBytes":   rssBytes(),
		"heapInuse":  ms.HeapInuse,
		"goroutines": runtime.NumGoroutine(),
		"streams":    p.streams.Load(),
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// rssBytes reads the resident set size from /proc/self/statm (Linux).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}
