package router

import (
	"math"
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var l latency
	if got := l.at(t0); got != 0 {
		t.Fatalf("unmeasured: %v, want 0", got)
	}
	l.observe(10*time.Millisecond, t0)
	l.observe(50*time.Millisecond, t0.Add(time.Millisecond)) // a peak replaces the average at once
	if got := l.at(t0.Add(time.Millisecond)); got != 0.05 {
		t.Errorf("after a peak: %v, want 0.05", got)
	}
	// A faster response one decay constant later weighs 1 - 1/e.
	now := t0.Add(time.Millisecond + latencyDecay)
	l.observe(10*time.Millisecond, now)
	want := 0.05/math.E*(1/math.E) + 0.01*(1-1/math.E)
	if got := l.at(now); math.Abs(got-want) > 1e-12 {
		t.Errorf("after a faster response: %v, want %v", got, want)
	}
	// Without responses it decays: e^-3 after three constants.
	if got := l.at(now.Add(3 * latencyDecay)); math.Abs(got-want*math.Exp(-3)) > 1e-12 {
		t.Errorf("decayed: %v, want %v", got, want*math.Exp(-3))
	}
}

// TestLessWeighsLatency: an idle slow pod loses to a fast one until the
// fast one's load times its response time exceeds the slow one's.
func TestLessWeighsLatency(t *testing.T) {
	now := time.Unix(1000, 0)
	slow, fast, fresh := &Endpoint{Addr: "slow"}, &Endpoint{Addr: "fast"}, &Endpoint{Addr: "fresh"}
	slow.latency.observe(20*time.Millisecond, now)
	fast.latency.observe(2*time.Millisecond, now)
	for _, tc := range []struct {
		fastLoad int64
		fastWins bool
	}{{0, true}, {5, true}, {9, false}, {12, false}} {
		fast.outstanding.Store(tc.fastLoad)
		if got := less(fast, slow, now); got != tc.fastWins {
			t.Errorf("fast pod with load %d: less(fast, slow) = %v, want %v", tc.fastLoad, got, tc.fastWins)
		}
	}
	// A pod not measured yet is compared by load alone.
	fast.outstanding.Store(1)
	if !less(fresh, fast, now) || less(fast, fresh, now) {
		t.Error("an unmeasured idle pod should win against a loaded measured one")
	}
}
