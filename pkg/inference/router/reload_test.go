package router

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWatchRulesFile: a changed valid file applies; an invalid one is
// counted and the rules in force stay.
func TestWatchRulesFile(t *testing.T) {
	a, b := newFakePod(t), newFakePod(t)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	first := staticRules(a)
	if err := os.WriteFile(path, []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	r, base := newTestRouter(t, Config{}, first)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.WatchRulesFile(ctx, path, "models", 10*time.Millisecond, []byte(first)) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	if err := os.WriteFile(path, []byte(staticRules(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the new rules in force", func() bool {
		eps := r.table.Load().routes[0].split.targets[0].pool.Endpoints()
		return len(eps) == 1 && eps[0].Addr == b.addr
	})
	if code, _, _ := infer(t, base, "m", inferBody, nil); code != 200 || b.served.Load() != 1 {
		t.Errorf("after the reload: status %d, new pod served %d; want 200 and 1", code, b.served.Load())
	}
	if err := os.WriteFile(path, []byte(strings.Replace(staticRules(a), "routes:", "routs:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the invalid rules refused", func() bool {
		return testutil.ToFloat64(r.metrics.reloads.WithLabelValues("error")) == 1
	})
	if eps := r.table.Load().routes[0].split.targets[0].pool.Endpoints(); len(eps) != 1 || eps[0].Addr != b.addr {
		t.Errorf("invalid rules changed the endpoints to %v", eps)
	}
	if got := testutil.ToFloat64(r.metrics.reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("rules_reloads_total{result=ok} = %v, want 1", got)
	}
}
