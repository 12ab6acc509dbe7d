package router

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRefusedIsRetried: a pod answering 429 (queue full, before running)
// sends the request on to another pod; the client sees only successes.
func TestRefusedIsRetried(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			full, ok := newFakePod(t), newFakePod(t)
			full.status.Store(int32(code))
			r, base := newTestRouter(t, Config{Policy: RoundRobin}, staticRules(full, ok))
			const n = 20
			for range n {
				if code, body, _ := infer(t, base, "m", inferBody, nil); code != http.StatusOK {
					t.Fatalf("status %d (%s), want 200", code, body)
				}
			}
			if ok.served.Load() != n || full.served.Load() == 0 {
				t.Errorf("served: refusing pod %d, ok pod %d; want the ok pod to serve all %d and the refusing one to have been tried", full.served.Load(), ok.served.Load(), n)
			}
			if got := testutil.ToFloat64(r.metrics.retries.WithLabelValues("all", otherModel, "refused")); got != float64(full.served.Load()) {
				t.Errorf("retries_total{reason=refused} = %v, want %d", got, full.served.Load())
			}
		})
	}
}

// TestRefusedEverywhere: when every pod refuses, the client gets the last
// refusal with its Retry-After, after at most MaxAttempts pods.
func TestRefusedEverywhere(t *testing.T) {
	pods := []*fakePod{newFakePod(t), newFakePod(t), newFakePod(t), newFakePod(t)}
	for _, p := range pods {
		p.status.Store(http.StatusTooManyRequests)
	}
	_, base := newTestRouter(t, Config{MaxAttempts: 3}, staticRules(pods...))
	code, _, h := infer(t, base, "m", inferBody, nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("status %d Retry-After %q, want 429 and 1", code, h.Get("Retry-After"))
	}
	var total int64
	for _, p := range pods {
		total += p.served.Load()
	}
	if total != 3 {
		t.Errorf("%d pods tried, want 3 (MaxAttempts)", total)
	}
}

// TestMayHaveRunIsNotRetried: a 500 from a running request reaches the
// client as it is; no other pod sees the request.
func TestMayHaveRunIsNotRetried(t *testing.T) {
	bad, good := newFakePod(t), newFakePod(t)
	bad.status.Store(http.StatusInternalServerError)
	r, base := newTestRouter(t, Config{Policy: RoundRobin}, staticRules(bad, good))
	const n = 20
	failed := 0
	for range n {
		if code, _, _ := infer(t, base, "m", inferBody, nil); code == http.StatusInternalServerError {
			failed++
		}
	}
	if served := bad.served.Load() + good.served.Load(); served != n {
		t.Errorf("pods served %d requests for %d sent: something was retried", served, n)
	}
	if int64(failed) != bad.served.Load() {
		t.Errorf("%d failed, want %d (those the bad pod served)", failed, bad.served.Load())
	}
	if got := testutil.ToFloat64(r.metrics.upstreamErrors.WithLabelValues("all", otherModel, "status_5xx")); got != float64(failed) {
		t.Errorf("upstream_errors_total{kind=status_5xx} = %v, want %d", got, failed)
	}
}

// TestPodKilledMidRequest: a pod killed while it holds requests fails
// exactly those, none is sent again; later requests that meet its closed
// port go to the other pod.
func TestPodKilledMidRequest(t *testing.T) {
	victim, other := newFakePod(t), newFakePod(t)
	victim.hold = make(chan struct{})
	r, base := newTestRouter(t, Config{Policy: RoundRobin}, staticRules(victim, other))
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			code, _, _ := infer(t, base, "m", inferBody, nil)
			codes <- code
		})
	}
	// Round robin: half of them wait at the victim, the others are done.
	poll(t, "the victim to hold its requests and the other pod to serve the rest", func() bool {
		return victim.held.Load()+other.served.Load() == n && len(codes) == int(other.served.Load())
	})
	held := victim.held.Load()
	if held == 0 {
		t.Fatal("the victim holds no request")
	}
	victim.kill()
	wg.Wait()
	close(codes)
	var ok, bad int64
	for c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusBadGateway:
			bad++
		default:
			t.Errorf("status %d, want 200 or 502", c)
		}
	}
	if bad != held || ok != n-held {
		t.Errorf("%d failed and %d succeeded; want exactly the %d the victim held to fail", bad, ok, held)
	}
	if other.served.Load() != n-held {
		t.Errorf("the other pod served %d, want %d: a request that may have run was retried", other.served.Load(), n-held)
	}
	if got := testutil.ToFloat64(r.metrics.retries.WithLabelValues("all", otherModel, "broken")); got != 0 {
		t.Errorf("retries_total{reason=broken} = %v, want 0", got)
	}
	// New requests find the victim's port closed: nothing was sent, so
	// they go to the other pod.
	for range 10 {
		if code, body, _ := infer(t, base, "m", inferBody, nil); code != http.StatusOK {
			t.Errorf("after the kill: status %d (%s), want 200", code, body)
		}
	}
	if got := testutil.ToFloat64(r.metrics.retries.WithLabelValues("all", otherModel, "unreachable")); got == 0 {
		t.Error("no request met the dead pod's closed port and moved on; want retries_total{reason=unreachable} > 0")
	}
}

// TestVersionRoutes: a split across versions rewrites the path; the
// unversioned path goes through unchanged where the backend pins none.
func TestVersionRoutes(t *testing.T) {
	p := newFakePod(t)
	rules := `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- {name: pods, endpoints: ["` + p.addr + `"]}
routes:
- name: pinned
  match: {model: m, headers: {X-Canary: "always"}}
  backends: [{backend: pods, version: "2"}]
- name: plain
  match: {model: m}
  backends: [{backend: pods}]
`
	_, base := newTestRouter(t, Config{}, rules)
	if _, body, _ := infer(t, base, "m", inferBody, http.Header{"X-Canary": {"always"}}); !strings.Contains(body, `"path":"/v2/models/m/versions/2/infer"`) {
		t.Errorf("pinned route: pod saw %s, want the version 2 path", body)
	}
	if _, body, _ := infer(t, base, "m", inferBody, nil); !strings.Contains(body, `"path":"/v2/models/m/infer"`) {
		t.Errorf("plain route: pod saw %s, want the unversioned path", body)
	}
	if code, body, _ := infer(t, base, "unknown", inferBody, nil); code != http.StatusNotFound || !strings.Contains(body, "no route for model") {
		t.Errorf("unrouted model: %d %s, want 404 naming the model", code, body)
	}
}

// TestQueueAwareBalancing: with two pods, the one reporting a deep queue
// gets nothing while the other is idle.
func TestQueueAwareBalancing(t *testing.T) {
	busy, idle := newFakePod(t), newFakePod(t)
	busy.queue.Store(40)
	r, base := newTestRouter(t, Config{QueueScrapeInterval: 20 * 1e6}, staticRules(busy, idle))
	pool := r.table.Load().routes[0].split.targets[0].pool
	poll(t, "the busy pod's queue depth to be scraped", func() bool {
		for _, e := range pool.Endpoints() {
			if e.Addr == busy.addr {
				return e.queue.Load() == 40
			}
		}
		return false
	})
	for range 50 {
		if code, _, _ := infer(t, base, "m", inferBody, nil); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if busy.served.Load() != 0 || idle.served.Load() != 50 {
		t.Errorf("busy pod served %d, idle pod %d; want 0 and 50", busy.served.Load(), idle.served.Load())
	}
}
