package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// load is what one load run measured.
type load struct {
	requests, errors int64
	rps              float64
	p50ms, p99ms     float64
}

func (l load) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  (%d requests, %d errors)", l.rps, l.p50ms, l.p99ms, l.requests, l.errors)
}

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
}

// send posts body and reads the whole answer; only 200 counts.
func send(c *http.Client, url, body string) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

func warm(url, body string) {
	c := newClient(8)
	for range 200 {
		_ = send(c, url, body)
	}
}

// closedLoop runs conc clients that each send their next request as soon
// as the previous is answered.
func closedLoop(url, body string, conc int, d time.Duration) load {
	c := newClient(conc)
	var errs atomic.Int64
	lat := make([][]time.Duration, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := send(c, url, body); err != nil {
					errs.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return summarize(slices.Concat(lat...), errs.Load(), time.Since(start))
}

// openLoop sends requests at a fixed rate whatever the answers' pace, so
// queueing shows in the latency instead of slowing the clients.
func openLoop(url, body string, rate float64, d time.Duration) load {
	c := newClient(1024)
	var errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for next := start; next.Before(start.Add(d)); next = next.Add(interval) {
		time.Sleep(time.Until(next))
		wg.Go(func() {
			t0 := time.Now()
			if err := send(c, url, body); err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	return summarize(lat, errs.Load(), time.Since(start))
}

func summarize(lat []time.Duration, errs int64, wall time.Duration) load {
	l := load{requests: int64(len(lat)), errors: errs, rps: float64(len(lat)) / wall.Seconds()}
	if len(lat) == 0 {
		return l
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	l.p50ms, l.p99ms = at(0.50), at(0.99)
	return l
}

// writeEmptyModel writes an 8 -> 1 model: the server's own cost, nearly
// nothing of the model's.
func writeEmptyModel(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		return err
	}
	data, err := model.EncodeSafetensors(map[string]model.Tensor{
		"w": {Shape: []int{8, 1}, Data: make([]float32, 8)}, "b": {Shape: []int{1}, Data: []float32{0.5}},
	}, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "1", model.WeightsFile), data, 0o644); err != nil {
		return err
	}
	cfg := "name: empty\nplatform: gpufleet-mlp\ninputs: [{name: features, datatype: FP32, shape: [8]}]\noutputs: [{name: y, datatype: FP32, shape: [1]}]\nlayers: [{weights: w, bias: b, activation: identity}]\n"
	return os.WriteFile(filepath.Join(dir, model.ConfigFile), []byte(cfg), 0o644)
}

func copyModel(from, to string) error { return copyTree(from, to, nil) }

// copyTree copies a directory, passing each file through edit if set.
func copyTree(from, to string, edit func(path string, data []byte) []byte) error {
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if edit != nil {
			data = edit(path, data)
		}
		return os.WriteFile(dst, data, 0o644)
	})
}
