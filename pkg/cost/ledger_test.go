package cost

import (
	"strings"
	"testing"
	"time"
)

func TestNewLedgerOptions(t *testing.T) {
	_, err := NewLedger(WithPeriod(-time.Second), WithRetention(time.Second), WithClock(nil),
		WithRecommendOptions(RecommendOptions{MinUtilization: 2}))
	for _, want := range []string{"period -1s: must be positive", "retention 1s: must be between", "clock must not be nil", "minimum utilization 2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want it to contain %q", err, want)
		}
	}
	if _, err := NewLedger(WithPeriod(time.Minute), WithDeadPodTTL(time.Minute)); err == nil || !strings.Contains(err.Error(), "dead pod TTL 1m0s: must be longer than the max gap 3m0s") {
		t.Errorf("error %v for a TTL shorter than the max gap", err)
	}
}

func gpuPod(name string, gpus float64, start time.Time) PodUsage {
	return PodUsage{Namespace: "ns", Name: name, UID: name, WorkloadKind: KindDeployment, Workload: "w",
		Node: "n", Model: "T4", Start: start, AllocatedGPUs: gpus, UsedGPUs: gpus / 2, UsedKnown: true}
}

func TestObserveErrors(t *testing.T) {
	l := newTestLedger(t)
	if err := l.Observe(Snapshot{}); err == nil || !strings.Contains(err.Error(), "without a time") {
		t.Errorf("zero time: %v", err)
	}
	good := gpuPod("good", 1, t0)
	s := Snapshot{Time: t0.Add(time.Minute), Pods: []PodUsage{
		good, good,
		{Namespace: "ns", Name: "neg", AllocatedGPUs: -1},
		{Namespace: "ns", Name: "nan", AllocatedGPUs: 1, UsedGPUs: -0.5, UsedKnown: true},
		{Name: "nameless", AllocatedGPUs: 1},
		{Namespace: "ns", Name: "cpu-only", AllocatedGPUs: 0},
	}, Nodes: []NodeGPUs{{Node: "", GPUs: 2}, {Node: "n", GPUs: -1}}}
	err := l.Observe(s)
	for _, want := range []string{"pod ns/good (uid \"good\") appears twice", "pod ns/neg in the cost snapshot: allocated GPUs -1 out of range",
		"pod ns/nan in the cost snapshot: used GPUs -0.5 out of range", "pod /nameless in the cost snapshot: no namespace or name",
		`node "" with 2 GPUs`, `node "n" with -1 GPUs`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "cpu-only") {
		t.Errorf("a pod without GPUs is an error: %v", err)
	}
	if got := counter(t, l, MetricAllocatedSeconds, "good"); got != 60 {
		t.Errorf("the valid pod's allocation %v, want 60 (accounted despite the others)", got)
	}
	for _, at := range []time.Duration{time.Minute, 30 * time.Second} {
		if err := l.Observe(Snapshot{Time: t0.Add(at)}); err == nil || !strings.Contains(err.Error(), "is not after the previous one") {
			t.Errorf("snapshot at t0+%v after t0+1m: %v", at, err)
		}
	}
}

// TestGapsAndReappearance: a gap longer than MaxGap is unobserved (no use,
// no idle), but allocation continues; a pod missing from some snapshots
// is billed for the time between, it held its GPUs all along.
func TestGapsAndReappearance(t *testing.T) {
	l := newTestLedger(t)
	a, b := gpuPod("a", 1, t0), gpuPod("b", 0.5, t0)
	node := []NodeGPUs{{Node: "n", Model: "T4", GPUs: 2}}
	steps := []struct {
		at   time.Duration
		pods []PodUsage
	}{
		{0, []PodUsage{a, b}},
		{10 * time.Second, []PodUsage{a, b}},
		{20 * time.Second, []PodUsage{a}},     // b missing
		{30 * time.Second, []PodUsage{a, b}},  // b back: billed 10..30 too
		{150 * time.Second, []PodUsage{a, b}}, // 2 min gap: unobserved
		{160 * time.Second, []PodUsage{a, b}},
	}
	for _, s := range steps {
		if err := l.Observe(Snapshot{Time: t0.Add(s.at), Pods: s.pods, Nodes: node}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter(t, l, MetricAllocatedSeconds, "a"); got != 160 {
		t.Errorf("a allocated %v GPU-s, want 160", got)
	}
	if got := counter(t, l, MetricAllocatedSeconds, "b"); got != 80 {
		t.Errorf("b allocated %v GPU-s, want 80 (0.5 x 160 s)", got)
	}
	// a's use (0.5) over the observed intervals 0-30 and 150-160.
	if got := counter(t, l, MetricUsedSeconds, "a"); got != 20 {
		t.Errorf("a used %v GPU-s, want 20", got)
	}
	// b's use (0.25) only where it was seen at both ends: 0-10, 150-160.
	if got := counter(t, l, MetricUsedSeconds, "b"); got != 5 {
		t.Errorf("b used %v GPU-s, want 5", got)
	}
	if got := counter(t, l, MetricObservedSeconds, ""); got != 40 {
		t.Errorf("observed %v s, want 40", got)
	}
	// Idle: 2 GPUs minus what pods held, over observed intervals:
	// 0-10: 0.5 s x... (2-1.5) x 10 = 5; 10-20: b unseen since 10, (2-1) x 10
	// = 10; 20-30: b billed 10..30, of which 20-30 here: 5; 150-160: 5.
	if got := counter(t, l, MetricUnallocatedSeconds, ""); got != 25 {
		t.Errorf("unallocated %v GPU-s, want 25", got)
	}
	u, err := l.Usage(t0, t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if u.ObservedSeconds != 40 || !u.To.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("usage observed %v s up to %v", u.ObservedSeconds, u.To)
	}
}

// TestOvercommitIdleNeverNegative: pods reporting more than the node has
// leave no negative idle time.
func TestOvercommitIdleNeverNegative(t *testing.T) {
	l := newTestLedger(t)
	for _, at := range []time.Duration{0, 10 * time.Second} {
		s := Snapshot{Time: t0.Add(at), Pods: []PodUsage{gpuPod("a", 2, t0), gpuPod("b", 1, t0)},
			Nodes: []NodeGPUs{{Node: "n", Model: "T4", GPUs: 2}}}
		if err := l.Observe(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter(t, l, MetricUnallocatedSeconds, ""); got != 0 {
		t.Errorf("unallocated %v, want 0", got)
	}
}

func TestUsageRetentionAndRange(t *testing.T) {
	l := newTestLedger(t, WithRetention(time.Hour))
	start := t0.Add(-3 * time.Hour)
	for at := time.Duration(0); at <= 2*time.Hour; at += period {
		s := Snapshot{Time: t0.Add(at), Pods: []PodUsage{gpuPod("a", 1, start)}}
		if err := l.Observe(s); err != nil {
			t.Fatal(err)
		}
	}
	u, err := l.Usage(t0, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !u.From.Equal(t0.Add(time.Hour)) || !u.To.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("range %v to %v, want clipped to t0+1h to t0+2h", u.From, u.To)
	}
	if !slicesContain(u.Notes, "history is kept for 1h0m0s") {
		t.Errorf("notes %q: want one about the retention", u.Notes)
	}
	if len(u.Entries) != 1 || !near(u.Entries[0].AllocatedGPUSeconds, 3600) {
		t.Errorf("entries %+v, want a's 3600 GPU-s", u.Entries)
	}
	// Partial minutes widen to whole ones.
	u, err = l.Usage(t0.Add(90*time.Minute+20*time.Second), t0.Add(90*time.Minute+40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !u.From.Equal(t0.Add(90*time.Minute)) || !u.To.Equal(t0.Add(91*time.Minute)) || !near(u.Entries[0].AllocatedGPUSeconds, 60) {
		t.Errorf("range %v to %v with %+v, want one whole minute", u.From, u.To, u.Entries)
	}
	if _, err := l.Usage(t0, t0); err == nil {
		t.Error("empty range: no error")
	}
	empty := newTestLedger(t)
	u, err = empty.Usage(t0, t0.Add(time.Hour))
	if err != nil || len(u.Entries) != 0 || !slicesContain(u.Notes, "no snapshots") {
		t.Errorf("empty ledger: %+v, %v", u, err)
	}
}

func TestDerivedPerGPU(t *testing.T) {
	l := newTestLedger(t)
	s := Snapshot{Time: t0, Pods: []PodUsage{
		{Namespace: "a", Name: "two", Node: "n", AllocatedGPUs: 2, GPUIndices: []int{0, 1}},
		{Namespace: "a", Name: "s1", Node: "n", AllocatedGPUs: 0.3, GPUIndices: []int{2}},
		{Namespace: "a", Name: "s2", Node: "n", AllocatedGPUs: 0.25, GPUIndices: []int{2}},
		{Namespace: "a", Name: "elsewhere", Node: "m", AllocatedGPUs: 1, GPUIndices: []int{0}},
	}, Nodes: []NodeGPUs{{Node: "n", Model: "T4", GPUs: 4}, {Node: "m", Model: "T4", GPUs: 1, PerGPUAllocatedMilli: []int64{700}}}}
	if err := l.Observe(s); err != nil {
		t.Fatal(err)
	}
	u, err := l.Usage(t0.Add(-time.Minute), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int64{}
	for _, g := range u.GPUs {
		got[g.Node] = g.PerGPUAllocatedMilli
	}
	if want := []int64{1000, 1000, 550, 0}; !equalInts(got["n"], want) {
		t.Errorf("node n per GPU %v, want %v (derived from the pods)", got["n"], want)
	}
	if want := []int64{700}; !equalInts(got["m"], want) {
		t.Errorf("node m per GPU %v, want %v (the scheduler's view wins)", got["m"], want)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHistoryRecyclesKeys: keys that fell out of the history free their
// ids, so churning workloads do not grow the Ledger without bound.
func TestHistoryRecyclesKeys(t *testing.T) {
	l := newTestLedger(t, WithRetention(2*time.Minute), WithDeadPodTTL(time.Minute))
	observe := func(from, to time.Duration, p PodUsage) {
		for at := from; at <= to; at += period {
			if err := l.Observe(Snapshot{Time: t0.Add(at), Pods: []PodUsage{p},
				Nodes: []NodeGPUs{{Node: p.Node, Model: "T4", GPUs: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := gpuPod("a", 1, t0)
	b := gpuPod("b", 1, t0.Add(10*time.Minute))
	b.Workload, b.Node = "other", "m"
	observe(0, time.Minute, a)
	observe(10*time.Minute, 12*time.Minute, b)
	if n := len(l.hist.keys.keys); n != 1 {
		t.Errorf("%d interned keys, want 1 (a's id reused by b)", n)
	}
	if n := len(l.hist.nodes.keys); n != 1 {
		t.Errorf("%d interned node keys, want 1", n)
	}
	u, err := l.Usage(t0.Add(10*time.Minute), t0.Add(12*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Entries) != 1 || u.Entries[0].Workload != "other" || !near(u.Entries[0].AllocatedGPUSeconds, 120) {
		t.Errorf("entries %+v, want b's 120 GPU-s only", u.Entries)
	}
	if len(u.Nodes) != 1 || u.Nodes[0].Node != "m" {
		t.Errorf("nodes %+v, want m only", u.Nodes)
	}
}
