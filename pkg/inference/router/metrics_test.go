package router

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsExposition compares the exposition text after known traffic.
func TestMetricsExposition(t *testing.T) {
	refusing, ok := newFakePod(t), newFakePod(t)
	refusing.status.Store(http.StatusTooManyRequests)
	reg := prometheus.NewRegistry()
	rules := `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- {name: pods, endpoints: ["` + refusing.addr + `", "` + ok.addr + `"]}
routes:
- name: pv
  match: {model: property-value}
  backends: [{backend: pods, weight: 100, version: "1"}, {backend: pods, weight: 0, version: "2"}]
  rateLimit: {requestsPerSecond: 1, burst: 2}
`
	clock := &fakeClock{}
	_, base := newTestRouter(t, Config{Registry: reg, Policy: RoundRobin, Now: clock.now}, rules)
	for range 3 {
		infer(t, base, "property-value", inferBody, nil) // 2 pass (1 of them retried), 1 limited
	}
	infer(t, base, "other", inferBody, nil) // no route
	want := `
# HELP gpufleet_router_backend_requests_total Inference requests the routes' splits sent to each backend and pinned version (a request's retries count once).
# TYPE gpufleet_router_backend_requests_total counter
gpufleet_router_backend_requests_total{backend="pods",route="pv",version="1"} 2
gpufleet_router_backend_requests_total{backend="pods",route="pv",version="2"} 0
# HELP gpufleet_router_backend_endpoints Ready endpoints of each backend.
# TYPE gpufleet_router_backend_endpoints gauge
gpufleet_router_backend_endpoints{backend="pods"} 2
# HELP gpufleet_router_rate_limited_total Requests answered 429 by a rate limit, by route (_global for the global limit).
# TYPE gpufleet_router_rate_limited_total counter
gpufleet_router_rate_limited_total{route="pv"} 1
# HELP gpufleet_router_requests_total Requests answered, by route, model and HTTP status code.
# TYPE gpufleet_router_requests_total counter
gpufleet_router_requests_total{code="200",model="property-value",route="pv"} 2
gpufleet_router_requests_total{code="404",model="_other",route="_none"} 1
gpufleet_router_requests_total{code="429",model="property-value",route="pv"} 1
# HELP gpufleet_router_retries_total Requests sent again to another pod, by reason: refused (429 or 503 before running) or unreachable (no connection).
# TYPE gpufleet_router_retries_total counter
gpufleet_router_retries_total{model="property-value",reason="refused",route="pv"} 1
# HELP gpufleet_router_route_weight_percent Current share of a route's requests per backend and version, as rules or an Argo Rollout set it.
# TYPE gpufleet_router_route_weight_percent gauge
gpufleet_router_route_weight_percent{backend="pods",route="pv",version="1"} 100
gpufleet_router_route_weight_percent{backend="pods",route="pv",version="2"} 0
# HELP gpufleet_router_upstream_errors_total Failed attempts at a pod, by kind: refused, unreachable, broken (connection lost after sending), timeout, status_5xx.
# TYPE gpufleet_router_upstream_errors_total counter
gpufleet_router_upstream_errors_total{kind="refused",model="property-value",route="pv"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"gpufleet_router_backend_endpoints", "gpufleet_router_backend_requests_total", "gpufleet_router_rate_limited_total", "gpufleet_router_requests_total",
		"gpufleet_router_retries_total", "gpufleet_router_route_weight_percent", "gpufleet_router_upstream_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "gpufleet_router_request_duration_seconds"); n != 2 {
		t.Errorf("request_duration_seconds has %d series, want 2 (route pv, and no route)", n)
	}
}

// TestDrain: Shutdown turns readiness off at once and lets the request in
// flight finish.
func TestDrain(t *testing.T) {
	p := newFakePod(t)
	p.hold = make(chan struct{})
	rs, err := Decode([]byte(staticRules(p)), "models")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{QueueScrapeInterval: -1}, rs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: time.Second}
	base := serve(t, srv)
	poll(t, "ready", r.Ready)
	codes := make(chan int, 1)
	go func() { code, _, _ := infer(t, base, "m", inferBody, nil); codes <- code }()
	poll(t, "the request held by the pod", func() bool { return p.held.Load() == 1 })
	var wg sync.WaitGroup
	var shutdownErr error
	wg.Go(func() { shutdownErr = r.Shutdown(context.Background(), srv, 0) })
	poll(t, "readiness off", func() bool { return !r.Ready() })
	close(p.hold)
	if code := <-codes; code != http.StatusOK {
		t.Errorf("the request in flight during the drain got %d, want 200", code)
	}
	wg.Wait()
	if shutdownErr != nil {
		t.Errorf("Shutdown: %v", shutdownErr)
	}
}
