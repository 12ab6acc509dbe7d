package cost

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// counter returns the value of metric for pod (any pod label when pod is
// empty and the metric has none), NaN when there is no such series.
func counter(t *testing.T, l *Ledger, metric, pod string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			podLabel := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "pod" {
					podLabel = lp.GetValue()
				}
			}
			if podLabel == pod {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return math.NaN()
}

func TestCollectorExposition(t *testing.T) {
	l := newTestLedger(t)
	start := t0.Add(-time.Minute)
	snap := func(at time.Duration, used, rps float64) Snapshot {
		return Snapshot{
			Time: t0.Add(at),
			Pods: []PodUsage{{
				Namespace: "ml", Name: "bert-1", UID: "u1", WorkloadKind: KindDeployment, Workload: "bert",
				Node: "node-a", Model: "V100M16", Start: start, AllocatedGPUs: 0.3, GPUIndices: []int{1},
				UsedGPUs: used, UsedKnown: true, RequestsPerSecond: rps, RPSKnown: true,
			}},
			Nodes: []NodeGPUs{{Node: "node-a", Model: "V100M16", GPUs: 2}},
		}
	}
	for _, s := range []Snapshot{snap(0, 0.1, 4), snap(10*time.Second, 0.3, 6)} {
		if err := l.Observe(s); err != nil {
			t.Fatal(err)
		}
	}
	// Allocated: 0.3 GPU x 70 s (from its start); used: (0.1+0.3)/2 x 10 s;
	// unallocated: 2 GPUs x 10 s - 0.3 x 10 s.
	const labels = `namespace="ml",node="node-a",pod="bert-1",workload="bert",workload_kind="Deployment"`
	want := `
# HELP gpufleet_cost_gpu_allocated_observed_seconds_total GPU time allocated to the pod over the intervals in which its use was observed: the denominator of efficiency.
# TYPE gpufleet_cost_gpu_allocated_observed_seconds_total counter
gpufleet_cost_gpu_allocated_observed_seconds_total{capacity_type="on-demand",model="V100M16",` + labels + `} 3
# HELP gpufleet_cost_gpu_allocated_ratio Share of the GPU that pods hold (0..1), at the newest snapshot.
# TYPE gpufleet_cost_gpu_allocated_ratio gauge
gpufleet_cost_gpu_allocated_ratio{capacity_type="on-demand",gpu="0",model="V100M16",node="node-a"} 0
gpufleet_cost_gpu_allocated_ratio{capacity_type="on-demand",gpu="1",model="V100M16",node="node-a"} 0.3
# HELP gpufleet_cost_gpu_allocated_seconds_total GPU time allocated to the pod (whole GPUs and gpu-milli shares by their share), from its start; derived from the start time, so it keeps growing across adapter restarts.
# TYPE gpufleet_cost_gpu_allocated_seconds_total counter
gpufleet_cost_gpu_allocated_seconds_total{capacity_type="on-demand",model="V100M16",` + labels + `} 21
# HELP gpufleet_cost_gpu_unallocated_seconds_total GPU time of the node that no pod held (idle capacity), over observed intervals.
# TYPE gpufleet_cost_gpu_unallocated_seconds_total counter
gpufleet_cost_gpu_unallocated_seconds_total{capacity_type="on-demand",model="V100M16",node="node-a"} 17
# HELP gpufleet_cost_gpu_used_seconds_total Busy GPU time of the pod (gpu-agent per-pod utilization integrated with the trapezoid rule over observed intervals).
# TYPE gpufleet_cost_gpu_used_seconds_total counter
gpufleet_cost_gpu_used_seconds_total{capacity_type="on-demand",model="V100M16",` + labels + `} 2
# HELP gpufleet_cost_observed_seconds_total Time covered by cost snapshots at most the maximum gap apart.
# TYPE gpufleet_cost_observed_seconds_total counter
gpufleet_cost_observed_seconds_total 10
# HELP gpufleet_cost_pod_seconds_total Time the pod existed, from its start (replica-seconds).
# TYPE gpufleet_cost_pod_seconds_total counter
gpufleet_cost_pod_seconds_total{capacity_type="on-demand",model="V100M16",` + labels + `} 70
# HELP gpufleet_cost_requests_observed_seconds_total Time over which the pod's request rate was observed.
# TYPE gpufleet_cost_requests_observed_seconds_total counter
gpufleet_cost_requests_observed_seconds_total{capacity_type="on-demand",model="V100M16",` + labels + `} 10
# HELP gpufleet_cost_requests_total Requests the pod served, integrated from its request rate over observed intervals.
# TYPE gpufleet_cost_requests_total counter
gpufleet_cost_requests_total{capacity_type="on-demand",model="V100M16",` + labels + `} 50
`
	if err := testutil.CollectAndCompare(l.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(l.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestCollectorReusedName: when a pod name is reused (a StatefulSet pod
// recreated), only the newest pod's series is exposed, so the registry
// never sees a duplicate.
func TestCollectorReusedName(t *testing.T) {
	l := newTestLedger(t)
	p := PodUsage{Namespace: "ml", Name: "web-0", UID: "old", WorkloadKind: KindStatefulSet, Workload: "web",
		Node: "n", Model: "T4", Start: t0, AllocatedGPUs: 1}
	if err := l.Observe(Snapshot{Time: t0.Add(100 * time.Second), Pods: []PodUsage{p}}); err != nil {
		t.Fatal(err)
	}
	p.UID, p.Start = "new", t0.Add(105*time.Second)
	if err := l.Observe(Snapshot{Time: t0.Add(110 * time.Second), Pods: []PodUsage{p}}); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, l, MetricAllocatedSeconds, "web-0"); got != 5 {
		t.Errorf("web-0 allocated %v, want 5 (the new pod's)", got)
	}
}
