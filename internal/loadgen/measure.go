package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one measured load run saw: requests answered 200, the
// others, the achieved rate and latency percentiles of the successes.
type Result struct {
	Requests, Errors int64
	RPS              float64
	P50ms, P99ms     float64
}

func (r Result) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  (%d requests, %d errors)", r.RPS, r.P50ms, r.P99ms, r.Requests, r.Errors)
}

// NewClient is a keep-alive client holding up to conns connections.
func NewClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
}

// Send posts body and reads the whole answer; only 200 counts.
func Send(c *http.Client, url, body string) error {
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

// Warm sends 200 requests, opening connections and warming caches.
func Warm(url, body string) {
	c := NewClient(8)
	for range 200 {
		_ = Send(c, url, body)
	}
}

// ClosedLoop runs conc clients that each send their next request as soon
// as the previous is answered, for d.
func ClosedLoop(url, body string, conc int, d time.Duration) Result {
	c := NewClient(conc)
	var errs atomic.Int64
	lat := make([][]time.Duration, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := Send(c, url, body); err != nil {
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

// OpenLoop sends requests at a fixed rate for d whatever the answers'
// pace, so queueing shows in the latency instead of slowing the clients.
func OpenLoop(url, body string, rate float64, d time.Duration) Result {
	c := NewClient(1024)
	var errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for next := start; next.Before(start.Add(d)); next = next.Add(interval) {
		time.Sleep(time.Until(next)) // pacing the sender, not waiting for a condition
		wg.Go(func() {
			t0 := time.Now()
			if err := Send(c, url, body); err != nil {
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

func summarize(lat []time.Duration, errs int64, wall time.Duration) Result {
	r := Result{Requests: int64(len(lat)), Errors: errs, RPS: float64(len(lat)) / wall.Seconds()}
	if len(lat) == 0 {
		return r
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	r.P50ms, r.P99ms = at(0.50), at(0.99)
	return r
}
