package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The control contract both servers implement:
//
//	POST /rotate?names=all|bench-0  -> {"updatedAtUnixNano": N, ...}
//	GET  /stats[?gc=1]              -> {"rssBytes", "heapInuse", "goroutines", "streams"}
type control struct {
	base   string
	client *http.Client
}

func newControl(base string) *control {
	if base == "" {
		return nil
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &control{base: strings.TrimRight(base, "/"), client: &http.Client{Timeout: 60 * time.Second}}
}

type rotateResult struct {
	updatedAtUnixNano   int64
	updateDurationNanos int64 // 0 when the server does not say
}

func (c *control) rotate(ctx context.Context, names string) (rotateResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/rotate?names="+names, nil)
	if err != nil {
		return rotateResult{}, err
	}
	body, err := c.do(req)
	if err != nil {
		return rotateResult{}, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return rotateResult{}, fmt.Errorf("POST /rotate: bad JSON %q: %w", body, err)
	}
	var out rotateResult
	raw, ok := m["updatedAtUnixNano"]
	if !ok {
		return out, fmt.Errorf("POST /rotate: no updatedAtUnixNano in %s", body)
	}
	if out.updatedAtUnixNano, err = parseInt64(raw); err != nil {
		return out, fmt.Errorf("POST /rotate: updatedAtUnixNano: %w", err)
	}
	if raw, ok := m["updateDurationNanos"]; ok {
		out.updateDurationNanos, _ = parseInt64(raw)
	}
	return out, nil
}

// parseInt64 accepts a JSON integer, a float (1.7e18) or a string of either:
// a Node server may print epoch nanoseconds as a BigInt string.
func parseInt64(raw json.RawMessage) (int64, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %s", raw)
	}
	return int64(f), nil
}

// stats returns the server's /stats object as numbers (non-numeric fields dropped).
func (c *control) stats(ctx context.Context, gc bool) (map[string]float64, error) {
	url := c.base + "/stats"
	if gc {
		url += "?gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("GET /stats: bad JSON %q: %w", body, err)
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case json.Number:
			if f, err := x.Float64(); err == nil {
				out[k] = f
			}
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				out[k] = f
			}
		}
	}
	return out, nil
}

func (c *control) do(req *http.Request) ([]byte, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// cpuNanos is user+system CPU time of this process.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func maxRSSBytes() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// procCPUNanos is user+system CPU time of another process (the server under
// test), from /proc/PID/stat; -1 when unknown.
func procCPUNanos(pid int) int64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// after ")": state(0) ppid(1) ... utime is field 14 overall -> index 11 here, stime 12
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) * (1e9 / clkTck)
}

func loadavg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	out := make([]float64, 0, 3)
	for i := 0; i < 3 && i < len(f); i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		out = append(out, v)
	}
	return out
}
