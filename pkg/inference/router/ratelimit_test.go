package router

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestTokenBucketExact: concurrent takes admit exactly the tokens there
// are, on a full bucket and after a refill.
func TestTokenBucketExact(t *testing.T) {
	clock := &fakeClock{}
	b := newTokenBucket(RateLimit{RequestsPerSecond: 10, Burst: 50}, clock.now)
	take := func(n int) int {
		var ok atomic.Int64
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if got, _ := b.take(); got {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		return int(ok.Load())
	}
	if got := take(500); got != 50 {
		t.Errorf("full bucket of 50, 500 concurrent takes: %d admitted", got)
	}
	clock.advance(1500 * time.Millisecond)
	if got := take(500); got != 15 {
		t.Errorf("1.5 s at 10/s, 500 concurrent takes: %d admitted, want 15", got)
	}
	if ok, wait := b.take(); ok || wait != 100*time.Millisecond {
		t.Errorf("empty bucket: take = %v, wait %v; want refused, 100ms", ok, wait)
	}
	clock.advance(time.Hour)
	if got := take(500); got != 50 {
		t.Errorf("after an hour: %d admitted, want the burst of 50", got)
	}
}

// TestRateLimitsHTTP: the global and a route's limit answer exactly the
// excess with 429 and Retry-After, under concurrent requests.
func TestRateLimitsHTTP(t *testing.T) {
	p := newFakePod(t)
	rules := `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
rateLimit: {requestsPerSecond: 5, burst: 30}
backends:
- {name: pods, endpoints: ["` + p.addr + `"]}
routes:
- name: limited
  match: {model: limited}
  backends: [{backend: pods}]
  rateLimit: {requestsPerSecond: 0.5, burst: 4}
- name: rest
  backends: [{backend: pods}]
`
	clock := &fakeClock{}
	_, base := newTestRouter(t, Config{Now: clock.now}, rules)
	count := func(model string, n int) (ok, limited int) {
		var okN, limN atomic.Int64
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				code, _, h := infer(t, base, model, inferBody, nil)
				switch {
				case code == http.StatusOK:
					okN.Add(1)
				case code == http.StatusTooManyRequests && h.Get("Retry-After") != "":
					limN.Add(1)
					if model == "limited" && h.Get("Retry-After") != "2" {
						t.Errorf("route limit at 0.5/s: Retry-After %q, want 2", h.Get("Retry-After"))
					}
				default:
					t.Errorf("status %d, Retry-After %q", code, h.Get("Retry-After"))
				}
			})
		}
		wg.Wait()
		return int(okN.Load()), int(limN.Load())
	}
	if ok, lim := count("limited", 20); ok != 4 || lim != 16 {
		t.Errorf("route burst 4, 20 concurrent: %d ok, %d limited", ok, lim)
	}
	// 20 global tokens used; 10 remain (30 - 20 taken by the route's requests).
	if ok, lim := count("other", 40); ok != 10 || lim != 30 {
		t.Errorf("global burst 30 with 20 spent, 40 concurrent: %d ok, %d limited; want 10 and 30", ok, lim)
	}
}
