package cost

import (
	"strings"
	"testing"
	"time"
)

func TestRoundUpMilli(t *testing.T) {
	for _, tc := range []struct {
		gpus float64
		want int64
	}{{0, 100}, {0.01, 100}, {0.264, 300}, {0.3, 300}, {0.25 * 1.2, 300}, {0.30001, 400}, {0.96, 1000}, {1.3, 1300}, {1.31, 1400}} {
		if got := roundUpMilli(tc.gpus); got != tc.want {
			t.Errorf("roundUpMilli(%v) = %d, want %d", tc.gpus, got, tc.want)
		}
	}
}

func TestBinsNeeded(t *testing.T) {
	for _, tc := range []struct {
		items []int64
		want  int
	}{{nil, 0}, {[]int64{500, 400, 300}, 2}, {[]int64{300, 300, 400}, 1}, {[]int64{600, 600, 600}, 3}, {[]int64{700, 300, 200, 800}, 2}} {
		if got := binsNeeded(tc.items); got != tc.want {
			t.Errorf("binsNeeded(%v) = %d, want %d", tc.items, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	vs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		vs = append(vs, float64(i))
	}
	if got := percentile(vs, 0.95); got != 95 {
		t.Errorf("p95 of 1..100 = %v, want 95", got)
	}
	if got := percentile([]float64{7}, 0.95); got != 7 {
		t.Errorf("p95 of one value = %v", got)
	}
}

// workload builds a Usage entry of a workload with replicas pods of gpus
// each over a 1 h window, using util of its GPUs.
func workload(kind, name string, replicas int, gpus, util float64, spot bool) Entry {
	podSec := float64(replicas) * 3600
	return Entry{
		Key: Key{Namespace: "ns", WorkloadKind: kind, Workload: name, Node: "n", Model: "V100M16", Spot: spot},
		Accum: Accum{AllocatedGPUSeconds: podSec * gpus, UsedGPUSeconds: podSec * gpus * util,
			AllocatedObservedGPUSeconds: podSec * gpus, PodSeconds: podSec},
	}
}

func TestRecommendRules(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		peaks   []UsePeak
		gpus    []NodeAllocation
		opts    RecommendOptions
		// want are the messages' expected substrings, one per
		// recommendation, in order.
		want []string
	}{
		{name: "busy enough", entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.30, false)}},
		{name: "share from the mean", entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.10, false)},
			want: []string{"ns/Deployment/a: 10% GPU utilization on 1.0 GPU per replica over 1.0 GPU-h -> a 200-milli share (gpufleet.io/gpu-milli: 200) would fit its use (mean 0.10 GPU per replica + 20% headroom)"}},
		{name: "share from the peak", entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.10, false)},
			peaks: []UsePeak{{WorkloadRef: WorkloadRef{Namespace: "ns", Kind: KindDeployment, Name: "a"}, P95UsedGPUsPerReplica: 0.45}},
			want:  []string{"a 600-milli share (gpufleet.io/gpu-milli: 600) would fit its use (p95 0.45 GPU per replica"}},
		{name: "peak needs the whole GPU", entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.10, false)},
			peaks: []UsePeak{{WorkloadRef: WorkloadRef{Namespace: "ns", Kind: KindDeployment, Name: "a"}, P95UsedGPUsPerReplica: 0.9}}},
		{name: "fewer whole GPUs", entries: []Entry{workload(KindStatefulSet, "a", 1, 4, 0.20, false)},
			want: []string{"ns/StatefulSet/a: 20% GPU utilization on 4.0 GPU per replica over 4.0 GPU-h -> 1 whole GPU(s) per replica would fit its use"}},
		{name: "already a small share", entries: []Entry{workload(KindDeployment, "a", 1, 0.1, 0.2, false)}},
		{name: "custom threshold", entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.40, false)}, opts: RecommendOptions{MinUtilization: 0.5},
			want: []string{"40% GPU utilization"}},
		{name: "too little evidence", entries: []Entry{func() Entry {
			e := workload(KindDeployment, "a", 1, 1, 0.1, false)
			e.AllocatedObservedGPUSeconds, e.UsedGPUSeconds = 600, 60
			return e
		}()}},
		{name: "batch on spot already", entries: []Entry{workload(KindJob, "j", 1, 1, 0.9, true)}},
		{name: "batch on demand", entries: []Entry{workload(KindJob, "j", 2, 1, 0.9, false)},
			want: []string{"Job ns/j on on-demand V100M16 (2.0 GPU-h, $4.96) -> spot would cost $1.48"}},
		{name: "serving Job is no replica advice", entries: []Entry{func() Entry {
			e := workload(KindDaemonSet, "d", 3, 1, 0.9, false)
			e.Requests, e.RequestsObservedSeconds = 3*3600, 3*3600
			return e
		}()}},
		{name: "replicas that serve little", entries: []Entry{func() Entry {
			e := workload(KindDeployment, "a", 4, 1, 0.9, false)
			e.Requests, e.RequestsObservedSeconds = 4*3600*2.5, 4*3600
			return e
		}()}, want: []string{"ns/Deployment/a: 2.5 requests/s per replica over 4.0 replicas on average (below 10.0) -> fewer replicas (1 would serve it at 10.0/s each) or a lower HPA minReplicas"}},
		{name: "one replica", entries: []Entry{func() Entry {
			e := workload(KindDeployment, "a", 1, 1, 0.9, false)
			e.Requests, e.RequestsObservedSeconds = 3600, 3600
			return e
		}()}},
		{name: "fragmented node", gpus: []NodeAllocation{{NodeKey: NodeKey{Node: "x"}, PerGPUAllocatedMilli: []int64{300, 300, 400, 1000}}},
			want: []string{"node x has 2.0 GPUs free in slivers across 3 GPUs (0 whole GPUs free); consolidating its shares onto 1 GPU would free 2 whole GPUs"}},
		{name: "slivers that do not pack", gpus: []NodeAllocation{{NodeKey: NodeKey{Node: "x"}, PerGPUAllocatedMilli: []int64{600, 600, 600, 0}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := Usage{From: t0, To: t0.Add(time.Hour), ObservedSeconds: 3600, Entries: tc.entries, Peaks: tc.peaks, GPUs: tc.gpus}
			r, err := BuildReport(u, ReportOptions{By: ByWorkload, Prices: testPrices(t), Recommend: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Recommendations) != len(tc.want) {
				var msgs []string
				for _, rec := range r.Recommendations {
					msgs = append(msgs, rec.Message)
				}
				t.Fatalf("recommendations %q, want %d", msgs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(r.Recommendations[i].Message, w) {
					t.Errorf("recommendation %q\nlacks %q", r.Recommendations[i].Message, w)
				}
			}
		})
	}
}

func TestBuildReportWarnsMissingPrice(t *testing.T) {
	p, err := ParsePrices([]byte("models:\n  T4: {onDemand: 0.35, spot: 0.11}\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := Usage{From: t0, To: t0.Add(time.Hour), Entries: []Entry{workload(KindDeployment, "a", 1, 1, 0.5, false)}}
	r, err := BuildReport(u, ReportOptions{By: ByModel, Prices: p})
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContain(r.Warnings, `no price for GPU model "V100M16" (on-demand): its cost is left out`) {
		t.Errorf("warnings %q", r.Warnings)
	}
	if _, err := BuildReport(u, ReportOptions{By: "team"}); err == nil {
		t.Error("unknown grouping: no error")
	}
}
