package cost

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The scripted scenario of docs/cost.md: three nodes, whole GPUs, 300/700
// milli shares on one GPU, a Job that vanishes mid-window, a Job whose end
// the adapter knows, fragmented shares; 10 s sampling over 6 h.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	period = 10 * time.Second
	window = 6 * time.Hour
)

// scriptPod is a pod and when the adapter reports it (offsets from t0,
// both ends included).
type scriptPod struct {
	p           PodUsage
	seen, until time.Duration
	// endAt, when set, is reported as End from that offset on.
	endAt, endFrom time.Duration
}

func pod(ns, kind, workload, name, node, model string, spot bool, gpus float64, idx []int) PodUsage {
	return PodUsage{
		Namespace: ns, Name: name, UID: ns + "-" + name, WorkloadKind: kind, Workload: workload,
		Node: node, Model: model, Spot: spot, AllocatedGPUs: gpus, GPUIndices: idx,
	}
}

func withUse(p PodUsage, used float64) PodUsage {
	p.UsedGPUs, p.UsedKnown = used, true
	return p
}

func withRPS(p PodUsage, rps float64) PodUsage {
	p.RequestsPerSecond, p.RPSKnown = rps, true
	return p
}

func withStart(p PodUsage, d time.Duration) PodUsage {
	p.Start = t0.Add(d)
	return p
}

var scenario = []scriptPod{
	// ml: bert, 2 replicas of 1 whole GPU at 22 %, 4.2 requests/s each,
	// started 30 min before the adapter.
	{p: withStart(withRPS(withUse(pod("ml", KindDeployment, "bert", "bert-1", "node-a", "V100M16", false, 1, []int{0}), 0.22), 4.2), -30*time.Minute), until: window},
	{p: withStart(withRPS(withUse(pod("ml", KindDeployment, "bert", "bert-2", "node-a", "V100M16", false, 1, []int{1}), 0.22), 4.2), -30*time.Minute), until: window},
	// Shares of one GPU: 300 and 700 milli.
	{p: withStart(withUse(pod("ml", KindDeployment, "small", "small-1", "node-a", "V100M16", false, 0.3, []int{2}), 0.2), -30*time.Minute), until: window},
	{p: withStart(withUse(pod("ml", KindStatefulSet, "big", "big-0", "node-a", "V100M16", false, 0.7, []int{2}), 0.6), -30*time.Minute), until: window},
	// A Job on on-demand V100s that vanishes after 3 h.
	{p: withStart(withUse(pod("batch", KindJob, "train", "train-x", "node-a", "V100M16", false, 1, []int{3}), 0.9), 0), until: 3 * time.Hour},
	// A Job on spot T4s whose end (2h00m05s) the adapter reports.
	{p: withStart(withUse(pod("batch", KindJob, "eval", "eval-y", "node-b", "T4", true, 1, []int{0}), 0.5), time.Hour),
		seen: time.Hour, until: 2*time.Hour + 10*time.Second, endAt: 2*time.Hour + 5*time.Second, endFrom: 2*time.Hour + 10*time.Second},
	// Notebooks without a controller, use unknown, in slivers on node-c.
	{p: withStart(pod("dev", "", "", "nb-1", "node-c", "V100M16", false, 0.5, []int{0}), -30*time.Minute), until: window},
	{p: withStart(pod("dev", "", "", "nb-2", "node-c", "V100M16", false, 0.4, []int{1}), -30*time.Minute), until: window},
	{p: withStart(pod("dev", "", "", "nb-3", "node-c", "V100M16", false, 0.3, []int{2}), -30*time.Minute), until: window},
}

func scenarioNodes() []NodeGPUs {
	return []NodeGPUs{
		{Node: "node-a", Model: "V100M16", GPUs: 4},
		{Node: "node-b", Model: "T4", Spot: true, GPUs: 2},
		{Node: "node-c", Model: "V100M16", GPUs: 4},
	}
}

// snapshotAt is the adapter's snapshot at t0+at.
func snapshotAt(at time.Duration) Snapshot {
	s := Snapshot{Time: t0.Add(at), Nodes: scenarioNodes()}
	for _, sp := range scenario {
		if at < sp.seen || at > sp.until {
			continue
		}
		p := sp.p
		if sp.endAt != 0 && at >= sp.endFrom {
			p.End = t0.Add(sp.endAt)
		}
		s.Pods = append(s.Pods, p)
	}
	return s
}

// feed observes the scenario's snapshots from t0+from to t0+to.
func feed(t *testing.T, l *Ledger, from, to time.Duration) {
	t.Helper()
	for at := from; at <= to; at += period {
		if err := l.Observe(snapshotAt(at)); err != nil {
			t.Fatalf("Observe(t0+%v): %v", at, err)
		}
	}
}

func newTestLedger(t *testing.T, opts ...Option) *Ledger {
	t.Helper()
	l, err := NewLedger(append([]Option{WithPeriod(period)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testPrices(t *testing.T) *Prices {
	t.Helper()
	p, err := ParsePrices([]byte(`currency: USD
models:
  V100M16: {onDemand: 2.48, spot: 0.74}
  T4: {onDemand: 0.35, spot: 0.11}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// near reports whether got is within 0.01 % of want (the issue asks for
// 1 %; one missed 10 s interval in 6 h is 0.05 %, so this is tighter).
func near(got, want float64) bool {
	if want == 0 {
		return math.Abs(got) < 1e-9
	}
	return math.Abs(got-want) <= 1e-4*math.Abs(want)
}

type wantRow struct {
	group                  string
	alloc, used, eff, cost float64 // eff < 0: unknown
	idle, idleCost         float64
}

func checkRows(t *testing.T, r Report, want []wantRow) {
	t.Helper()
	got := reportRows(r)
	if len(got) != len(want) {
		names := []string{}
		for _, g := range got {
			names = append(names, g.Group)
		}
		t.Fatalf("rows %q, want %d rows", names, len(want))
	}
	for i, w := range want {
		g := got[i]
		eff := -1.0
		if g.Efficiency != nil {
			eff = *g.Efficiency
		}
		if g.Group != w.group || !near(g.GPUHoursAllocated, w.alloc) || !near(g.GPUHoursUsed, w.used) ||
			!near(eff, w.eff) || !near(g.Cost, w.cost) || !near(g.IdleGPUHours, w.idle) || !near(g.IdleCost, w.idleCost) {
			t.Errorf("row %d = {%s alloc %.6f used %.6f eff %.6f cost %.6f idle %.6f idleCost %.6f}, want %+v",
				i, g.Group, g.GPUHoursAllocated, g.GPUHoursUsed, eff, g.Cost, g.IdleGPUHours, g.IdleCost, w)
		}
	}
}

const evalHours = 1 + 5.0/3600 // 1 h 5 s: from its start to its reported end

func TestScenarioReport(t *testing.T) {
	l := newTestLedger(t, WithPrices(testPrices(t)))
	feed(t, l, 0, window)

	idleA, idleB, idleC := 3.0, 2*6-evalHours, 4*6-7.2
	tests := []struct {
		by   GroupBy
		want []wantRow
	}{{
		by: ByNamespace,
		want: []wantRow{
			{"ml", 18, 2.64 + 1.2 + 3.6, (2.64 + 1.2 + 3.6) / 18, 18 * 2.48, 0, 0},
			{"dev", 7.2, 0, -1, 7.2 * 2.48, 0, 0},
			{"batch", 3 + evalHours, 2.7 + 0.5*evalHours, (2.7 + 0.5*evalHours) / (3 + evalHours), 3*2.48 + evalHours*0.11, 0, 0},
			{"(idle)", 0, 0, -1, 0, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
			{"(total)", 28.2 + evalHours, 7.44 + 2.7 + 0.5*evalHours, (7.44 + 2.7 + 0.5*evalHours) / (21 + evalHours),
				25.2*2.48 + 3*2.48 + evalHours*0.11, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
		},
	}, {
		by: ByWorkload,
		want: []wantRow{
			{"ml/Deployment/bert", 12, 2.64, 0.22, 12 * 2.48, 0, 0},
			{"ml/StatefulSet/big", 4.2, 3.6, 0.6 / 0.7, 4.2 * 2.48, 0, 0},
			{"batch/Job/train", 3, 2.7, 0.9, 3 * 2.48, 0, 0},
			{"dev/Pod/nb-1", 3, 0, -1, 3 * 2.48, 0, 0},
			{"dev/Pod/nb-2", 2.4, 0, -1, 2.4 * 2.48, 0, 0},
			{"dev/Pod/nb-3", 1.8, 0, -1, 1.8 * 2.48, 0, 0},
			{"ml/Deployment/small", 1.8, 1.2, 0.2 / 0.3, 1.8 * 2.48, 0, 0},
			{"batch/Job/eval", evalHours, 0.5 * evalHours, 0.5, evalHours * 0.11, 0, 0},
			{"(idle)", 0, 0, -1, 0, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
			{"(total)", 28.2 + evalHours, 7.44 + 2.7 + 0.5*evalHours, (7.44 + 2.7 + 0.5*evalHours) / (21 + evalHours),
				28.2*2.48 + evalHours*0.11, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
		},
	}, {
		by: ByNode,
		want: []wantRow{
			// node-a and node-c cost the same and hold as many GPU-hours:
			// the name decides.
			{"node-a", 21, 10.14, 10.14 / 21, 21 * 2.48, idleA, idleA * 2.48},
			{"node-c", 7.2, 0, -1, 7.2 * 2.48, idleC, idleC * 2.48},
			{"node-b", evalHours, 0.5 * evalHours, 0.5, evalHours * 0.11, idleB, idleB * 0.11},
			{"(total)", 28.2 + evalHours, 10.14 + 0.5*evalHours, (10.14 + 0.5*evalHours) / (21 + evalHours),
				28.2*2.48 + evalHours*0.11, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
		},
	}, {
		by: ByModel,
		want: []wantRow{
			{"V100M16", 28.2, 10.14, 10.14 / 21, 28.2 * 2.48, idleA + idleC, (idleA + idleC) * 2.48},
			{"T4", evalHours, 0.5 * evalHours, 0.5, evalHours * 0.11, idleB, idleB * 0.11},
			{"(total)", 28.2 + evalHours, 10.14 + 0.5*evalHours, (10.14 + 0.5*evalHours) / (21 + evalHours),
				28.2*2.48 + evalHours*0.11, idleA + idleB + idleC, (idleA+idleC)*2.48 + idleB*0.11},
		},
	}}
	for _, tc := range tests {
		t.Run(string(tc.by), func(t *testing.T) {
			r, err := l.Report(t0, t0.Add(window), tc.by)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, r, tc.want)
			if !r.From.Equal(t0) || !r.To.Equal(t0.Add(window)) || r.WindowSeconds != 6*3600 {
				t.Errorf("range %v to %v (%v s), want t0 to t0+6h", r.From, r.To, r.WindowSeconds)
			}
			if r.ObservedSeconds != 6*3600 || r.UnobservedSeconds != 0 {
				t.Errorf("observed %v s, unobserved %v s, want 21600 and 0", r.ObservedSeconds, r.UnobservedSeconds)
			}
			wantTotal := 28.2*2.48 + evalHours*0.11 + (idleA+idleC)*2.48 + idleB*0.11
			if !near(r.TotalCost, wantTotal) {
				t.Errorf("total cost %v, want %v", r.TotalCost, wantTotal)
			}
			if len(r.Warnings) != 0 {
				t.Errorf("warnings %q, want none", r.Warnings)
			}
		})
	}
}

func TestScenarioRecommendations(t *testing.T) {
	l := newTestLedger(t, WithPrices(testPrices(t)))
	feed(t, l, 0, window)
	r, err := l.Report(t0, t0.Add(window), ByWorkload)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ Kind, Target, Figure string }
	var got []rec
	for _, x := range r.Recommendations {
		got = append(got, rec{string(x.Kind), x.Target, x.Figure})
	}
	want := []rec{
		{"spot", "batch/Job/train", "3.0 GPU-h on on-demand V100M16"},
		{"fractional-gpu", "ml/Deployment/bert", "22% GPU utilization"},
		{"fewer-replicas", "ml/Deployment/bert", "4.2 requests/s per replica"},
		{"consolidate", "node/node-c", "1.8 GPUs free in slivers across 3 GPUs"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("recommendations (-want +got):\n%s", diff)
	}
	wantMsgs := []string{
		"Job batch/train on on-demand V100M16 (3.0 GPU-h, $7.44) -> spot would cost $2.22",
		"ml/Deployment/bert: 22% GPU utilization on 1.0 GPU per replica over 12.0 GPU-h -> a 300-milli share (gpufleet.io/gpu-milli: 300) would fit its use (p95 0.22 GPU per replica + 20% headroom); it would have cost $8.93 instead of $29.76",
		"ml/Deployment/bert: 4.2 requests/s per replica over 2.0 replicas on average (below 10.0) -> fewer replicas (1 would serve it at 10.0/s each) or a lower HPA minReplicas",
		"node node-c has 1.8 GPUs free in slivers across 3 GPUs (1 whole GPU free); consolidating its shares onto 2 GPUs would free 1 whole GPU",
	}
	for i, m := range wantMsgs {
		if r.Recommendations[i].Message != m {
			t.Errorf("recommendation %d:\n got %q\nwant %q", i, r.Recommendations[i].Message, m)
		}
	}
	if s := r.Recommendations[0].Savings; s == nil || !near(*s, 3*(2.48-0.74)) {
		t.Errorf("spot savings %v, want %v", s, 3*(2.48-0.74))
	}
	if s := r.Recommendations[1].Savings; s == nil || !near(*s, 29.76*0.7) {
		t.Errorf("share savings %v, want %v", s, 29.76*0.7)
	}
}

// TestScenarioDeath: a pod that vanishes is billed until its last
// observation; one whose end is reported is billed until that end, even
// though it stays in later snapshots.
func TestScenarioDeath(t *testing.T) {
	l := newTestLedger(t)
	feed(t, l, 0, window)
	u, err := l.Usage(t0, t0.Add(window))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, e := range u.Entries {
		got[e.Workload] += e.AllocatedGPUSeconds
	}
	if want := 3 * 3600.0; !near(got["train"], want) {
		t.Errorf("train allocated %v GPU-s, want %v (until its last observation at 3h)", got["train"], want)
	}
	if want := 3605.0; !near(got["eval"], want) {
		t.Errorf("eval allocated %v GPU-s, want %v (until its reported end)", got["eval"], want)
	}
	// The counters of a pod that ended stay for the dead pod TTL (15 min),
	// with its final value, then go.
	early := newTestLedger(t)
	feed(t, early, 0, 2*time.Hour+10*time.Minute)
	if c := counter(t, early, MetricAllocatedSeconds, "eval-y"); !near(c, 3605) {
		t.Errorf("eval counter %v 10 min after its end, want 3605", c)
	}
	if c := counter(t, l, MetricAllocatedSeconds, "eval-y"); !math.IsNaN(c) {
		t.Errorf("eval counter %v 4 h after its end, want it gone", c)
	}
	if c := counter(t, l, MetricAllocatedSeconds, "train-x"); !math.IsNaN(c) {
		t.Errorf("train counter %v 3 h after it vanished, want it gone", c)
	}
}

// TestScenarioRestart: an adapter restart (a new Ledger fed the later
// snapshots, after a 5 min outage) continues the allocation counters
// without double counting or losing allocated time; use during the outage
// is unobserved, and efficiency is not diluted by it.
func TestScenarioRestart(t *testing.T) {
	ref := newTestLedger(t)
	feed(t, ref, 0, window)

	before := newTestLedger(t)
	feed(t, before, 0, 3*time.Hour)
	after := newTestLedger(t)
	outage := 5 * time.Minute
	restartAt := 3*time.Hour + outage
	if err := after.Observe(snapshotAt(restartAt)); err != nil {
		t.Fatal(err)
	}
	// Right after the restart, the allocation counter already includes the
	// outage: it continues from the old process's value.
	a0, a1 := counter(t, before, MetricAllocatedSeconds, "bert-1"), counter(t, after, MetricAllocatedSeconds, "bert-1")
	if want := a0 + outage.Seconds(); !near(a1, want) {
		t.Errorf("allocated counter after restart %v, want %v (old value %v + the outage)", a1, want, a0)
	}
	feed(t, after, restartAt+period, window)

	for _, pod := range []string{"bert-1", "small-1", "big-0", "nb-3"} {
		if got, want := counter(t, after, MetricAllocatedSeconds, pod), counter(t, ref, MetricAllocatedSeconds, pod); !near(got, want) {
			t.Errorf("%s allocated counter %v after the restart, %v without one", pod, got, want)
		}
		if got, want := counter(t, after, MetricPodSeconds, pod), counter(t, ref, MetricPodSeconds, pod); !near(got, want) {
			t.Errorf("%s pod-seconds counter %v after the restart, %v without one", pod, got, want)
		}
	}
	// The used counter restarts from zero (Prometheus sees a reset); old
	// plus new is the uninterrupted total minus the outage.
	used := counter(t, before, MetricUsedSeconds, "bert-1") + counter(t, after, MetricUsedSeconds, "bert-1")
	if want := counter(t, ref, MetricUsedSeconds, "bert-1") - 0.22*outage.Seconds(); !near(used, want) {
		t.Errorf("used before + after the restart %v, want %v", used, want)
	}
	// What Prometheus's increase() makes of the scraped counters: the
	// allocation counter never resets, the used counter does once.
	if got, want := promIncrease([]float64{0, a0, a1, counter(t, after, MetricAllocatedSeconds, "bert-1")}), (6*time.Hour + 30*time.Minute).Seconds(); !near(got, want) {
		t.Errorf("increase of the allocation counter over both processes %v, want %v", got, want)
	}

	// The restarted Ledger's report of the second half: allocation whole,
	// use over observed time only, efficiency undiluted.
	r, err := after.Report(t0.Add(3*time.Hour), t0.Add(window), ByWorkload)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]Row{}
	for _, row := range r.Rows {
		rows[row.Group] = row
	}
	bert := rows["ml/Deployment/bert"]
	if !near(bert.GPUHoursAllocated, 6) {
		t.Errorf("bert allocated %v GPU-h over the second half, want 6", bert.GPUHoursAllocated)
	}
	if want := 2 * 0.22 * (3*time.Hour - outage).Hours(); !near(bert.GPUHoursUsed, want) {
		t.Errorf("bert used %v GPU-h, want %v", bert.GPUHoursUsed, want)
	}
	if bert.Efficiency == nil || !near(*bert.Efficiency, 0.22) {
		t.Errorf("bert efficiency %v, want 0.22", bert.Efficiency)
	}
	if _, ok := rows["batch/Job/train"]; ok {
		t.Errorf("train (gone before the restart) billed after it")
	}
	if want := (3*time.Hour - outage).Seconds(); r.ObservedSeconds != want || !near(r.UnobservedSeconds, outage.Seconds()) {
		t.Errorf("observed %v s, unobserved %v s, want %v and %v", r.ObservedSeconds, r.UnobservedSeconds, want, outage.Seconds())
	}
	if !slicesContain(r.Warnings, "accounting started at") {
		t.Errorf("warnings %q: want one saying when accounting started", r.Warnings)
	}

	// The whole window from the restarted Ledger: allocation is re-derived
	// from the start times, so nothing is lost but the vanished Job.
	whole, err := after.Report(t0, t0.Add(window), ByWorkload)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range whole.Rows {
		if row.Group == "ml/Deployment/bert" && !near(row.GPUHoursAllocated, 12) {
			t.Errorf("bert allocated %v GPU-h over the whole window after the restart, want 12", row.GPUHoursAllocated)
		}
	}
}

func slicesContain(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// promIncrease is Prometheus's increase() without extrapolation: a drop is
// a reset from zero.
func promIncrease(vs []float64) float64 {
	sum := 0.0
	for i := 1; i < len(vs); i++ {
		if d := vs[i] - vs[i-1]; d >= 0 {
			sum += d
		} else {
			sum += vs[i]
		}
	}
	return sum
}

// TestScenarioSamplingIndependent: allocation is the same whatever the
// sampling period; coarse sampling changes only observed time.
func TestScenarioSamplingIndependent(t *testing.T) {
	fine := newTestLedger(t)
	feed(t, fine, 0, window)
	coarse := newTestLedger(t)
	for at := time.Duration(0); at <= window; at += 7 * time.Minute {
		if err := coarse.Observe(snapshotAt(at)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"bert-1", "small-1", "nb-2"} {
		f, c := counter(t, fine, MetricAllocatedSeconds, p), counter(t, coarse, MetricAllocatedSeconds, p)
		// Both end at their last snapshot: 6 h vs 5 h 57 min (7 min steps).
		scale := (6*time.Hour + 30*time.Minute).Seconds() / (5*time.Hour + 57*time.Minute + 30*time.Minute).Seconds()
		if !near(f, c*scale) {
			t.Errorf("%s allocated %v (10 s sampling) vs %v (7 min sampling)", p, f, c)
		}
	}
	if got := counter(t, coarse, MetricObservedSeconds, ""); got != 0 {
		t.Errorf("observed %v s with 7 min gaps (max gap 30 s), want 0", got)
	}
}
