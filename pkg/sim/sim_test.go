package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// smallCluster is 4 V100 nodes of 8 GPUs and 2 T4 nodes of 2.
func smallCluster() []Node {
	var nodes []Node
	for i := range 4 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("v100-%d", i), CPUMilli: 96000, MemoryMiB: 512 << 10, GPUs: 8, Model: "V100M16"})
	}
	for i := range 2 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("t4-%d", i), CPUMilli: 32000, MemoryMiB: 128 << 10, GPUs: 2, Model: "T4"})
	}
	return nodes
}

// mixedTrace is a reproducible openb-like pod list: shares, whole GPUs,
// multi-GPU, CPU-only and model-constrained pods.
func mixedTrace(n int) []Pod {
	rng := rand.New(rand.NewPCG(7, 7))
	pods := make([]Pod, n)
	for i := range pods {
		p := Pod{Name: fmt.Sprintf("pod-%04d", i), CPUMilli: int64(1000 * (1 + rng.IntN(8))), MemoryMiB: 1024}
		switch x := rng.IntN(10); {
		case x < 1:
		case x < 5:
			p.GPUs, p.GPUMilli = 1, int64(100*(1+rng.IntN(9)))
		case x < 8:
			p.GPUs, p.GPUMilli = 1, 1000
		case x < 9:
			p.GPUs, p.GPUMilli = 2, 1000
		default:
			p.GPUs, p.GPUMilli, p.Models = 1, 500, []string{"T4"}
		}
		pods[i] = p
	}
	return pods
}

func TestExperimentDeterministicAndConsistent(t *testing.T) {
	ctx := context.Background()
	for _, policy := range PolicyNames() {
		if policy == "random" {
			continue // random by design
		}
		t.Run(policy, func(t *testing.T) {
			a, err := Experiment(ctx, smallCluster(), mixedTrace(80), policy, 3, 1.3)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Experiment(ctx, smallCluster(), mixedTrace(80), policy, 3, 1.3)
			if err != nil {
				t.Fatal(err)
			}
			a.WallSeconds, b.WallSeconds = 0, 0
			if diff := cmp.Diff(a, b); diff != "" {
				t.Fatalf("two runs with one seed differ:\n%s", diff)
			}
			if a.TotalGPUs != 36 || len(a.AllocPct) != GridPoints || len(a.FragRatioPct) != GridPoints {
				t.Fatalf("result shape: %d GPUs, %d alloc points, %d frag points", a.TotalGPUs, len(a.AllocPct), len(a.FragRatioPct))
			}
			// Arrive only: allocation never drops, never exceeds 100 % nor
			// what arrived (give or take the largest pod, 2 of 36 GPUs,
			// and rounding to whole percent).
			for x := 1; x < GridPoints; x++ {
				if a.AllocPct[x] < a.AllocPct[x-1] || a.AllocPct[x] > 100 || a.AllocPct[x] > float64(x)+6.6 {
					t.Fatalf("allocation curve broken at %d%%: %v", x, a.AllocPct[max(0, x-3):x+1])
				}
			}
			if a.PodsScheduled == 0 || a.PodsFailed == 0 {
				t.Errorf("at 130 %% of capacity some pods fit and some fail: scheduled %d, failed %d", a.PodsScheduled, a.PodsFailed)
			}
		})
	}
}

// GPU model constraints hold and every pod's GPUs stay within capacity.
func TestSchedulerHonoursModelsAndCapacity(t *testing.T) {
	ctx := context.Background()
	pods := mixedTrace(120)
	s, err := NewScheduler(ctx, smallCluster(), "GPUFleet", pods, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string][]int64{}
	for i, p := range pods {
		placed, st := s.Schedule(ctx, PodObject(p, fmt.Sprint("u", i)))
		if !st.IsSuccess() {
			continue
		}
		if len(p.Models) > 0 && !strings.HasPrefix(placed.Node, "t4-") {
			t.Errorf("pod %s (models %v) on %s", p.Name, p.Models, placed.Node)
		}
		if len(placed.GPUs) != p.GPUs {
			t.Errorf("pod %s wants %d GPUs, got %v", p.Name, p.GPUs, placed.GPUs)
		}
		if used[placed.Node] == nil {
			used[placed.Node] = make([]int64, 8)
		}
		for _, g := range placed.GPUs {
			used[placed.Node][g] += p.PerGPUMilli()
			if used[placed.Node][g] > 1000 {
				t.Fatalf("GPU %d of %s over-committed after pod %s", g, placed.Node, p.Name)
			}
		}
	}
}

func TestInflate(t *testing.T) {
	pods := mixedTrace(50)
	nodes := smallCluster()
	order := Inflate(pods, nodes, 1.3, rand.New(rand.NewPCG(1, 2)))
	var total int64
	for _, p := range order {
		total += p.TotalGPUMilli()
	}
	if limit := int64(1.3 * 36000); total > limit || total < limit-2000 {
		t.Errorf("inflated GPU request %d, want just under %d", total, limit)
	}
	originals := order[:len(pods)]
	names := func(ps []Pod) []string {
		var n []string
		for _, p := range ps {
			n = append(n, p.Name)
		}
		slices.Sort(n)
		return n
	}
	if diff := cmp.Diff(names(pods), names(originals)); diff != "" {
		t.Errorf("the trace's pods come first, each once (-want +got):\n%s", diff)
	}
	for _, c := range order[len(pods):] {
		if !strings.Contains(c.Name, "-tuned-") {
			t.Errorf("clone %s is not named as one", c.Name)
		}
	}
}

func TestCurves(t *testing.T) {
	// 10 GPUs: 1 % arrived = 100 milli.
	events := []event{
		{arrivedMilli: 0, usedMilli: 0, fragRatioPct: 10},
		{arrivedMilli: 100, usedMilli: 100, fragRatioPct: 20},
		{arrivedMilli: 120, usedMilli: 100, fragRatioPct: 40}, // also 1 %
		{arrivedMilli: 500, usedMilli: 300, fragRatioPct: 50}, // 5 %
	}
	alloc, frag := curves(events, 10)
	if alloc[0] != 0 || alloc[1] != 1 || frag[1] != 30 {
		t.Errorf("bucket means: alloc[1]=%v frag[1]=%v, want 1 and 30", alloc[1], frag[1])
	}
	// 2 % has no event: the mean of 1..3 %; 4 % the mean of 3..5 %.
	if alloc[2] != 1 || alloc[4] != 3 || alloc[5] != 3 {
		t.Errorf("neighbours: alloc[2]=%v alloc[4]=%v alloc[5]=%v, want 1, 3, 3", alloc[2], alloc[4], alloc[5])
	}
	// Beyond the last event, the last value repeats.
	if alloc[130] != 3 || frag[130] != 50 {
		t.Errorf("carried forward: alloc[130]=%v frag[130]=%v", alloc[130], frag[130])
	}
}

func TestReplayWaitsAndAbandons(t *testing.T) {
	nodes := []Node{{Name: "n", CPUMilli: 8000, MemoryMiB: 8192, GPUs: 1, Model: "V100M16"}}
	pods := []Pod{
		{Name: "a", CPUMilli: 1000, MemoryMiB: 1, GPUs: 1, GPUMilli: 1000, CreationTime: 0, DeletionTime: 100},
		{Name: "b", CPUMilli: 1000, MemoryMiB: 1, GPUs: 1, GPUMilli: 1000, CreationTime: 10, DeletionTime: 50},  // gives up at 50
		{Name: "c", CPUMilli: 1000, MemoryMiB: 1, GPUs: 1, GPUMilli: 1000, CreationTime: 20, DeletionTime: 300}, // runs 100..380
	}
	res, err := Replay(context.Background(), nodes, pods, "gpufleet", 1, 50)
	if err != nil {
		t.Fatal(err)
	}
	if res.PodsArrived != 3 || res.PodsScheduled != 2 || res.PodsAbandoned != 1 || res.PodsPendingAtEnd != 0 || res.MaxPending != 2 {
		t.Errorf("counts: %+v", res)
	}
	if res.MeanWaitSeconds != 40 { // a waited 0, c 80
		t.Errorf("mean wait %v s, want 40", res.MeanWaitSeconds)
	}
	var at []string
	for _, s := range res.Samples {
		at = append(at, fmt.Sprintf("%d:%.0f/%d/%d", s.Time, s.AllocPct, s.Running, s.Pending))
	}
	want := []string{"0:100/1/0", "50:100/1/2", "100:100/1/0", "150:100/1/0", "200:100/1/0", "250:100/1/0", "300:100/1/0", "350:100/1/0"}
	if diff := cmp.Diff(want, at); diff != "" {
		t.Errorf("samples (t:alloc/running/pending) (-want +got):\n%s", diff)
	}
}
