package gpupack

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// halfGPUs is a workload of 500-milli pods only.
var halfGPUs = &Cluster{Typical: []TypicalPod{{Request: share(500), Weight: 1}}, MaxCPU: 64000, MaxGPUMilli: 4000}

// wholeGPUs is a workload of 1-GPU pods only.
var wholeGPUs = &Cluster{Typical: []TypicalPod{{Request: wholeGPU(1), Weight: 1}}, MaxCPU: 64000, MaxGPUMilli: 4000}

// mostlySmall is a workload of 90% 100-milli and 10% 500-milli pods: a
// GPU left with f < 500 free grows its fragmentation by f/10.
var mostlySmall = &Cluster{Typical: []TypicalPod{{Request: share(100), Weight: 0.9}, {Request: share(500), Weight: 0.1}}, MaxCPU: 64000, MaxGPUMilli: 4000}

// cpuBound is a workload whose pods need 1000 millicores besides their share.
var cpuBound = &Cluster{Typical: []TypicalPod{{Request: Request{Milli: 500, CPU: 1000}, Weight: 1}}, MaxCPU: 64000, MaxGPUMilli: 4000}

// anything is a workload whose fragmentation is all idle GPU (CPU-only
// pods): every placement lowers it by the placed share.
var anything = &Cluster{Typical: []TypicalPod{{Request: cpuOnly(100), Weight: 1}}, MaxCPU: 64000, MaxGPUMilli: 4000}

func TestFGD(t *testing.T) {
	runStrategyCases(t, StrategyFGD, []strategyCase{
		// BestFit would take GPU 0 and leave 200 no 500-milli pod can
		// use: growth 200, sigmoid(-0.2) = 0.450. GPU 1 keeps both GPUs
		// at 600: growth 0, sigmoid(0) = 0.5.
		{name: "share where 500-milli pods still fit", cluster: halfGPUs, node: gpuNode(600, 1000), r: share(400), wantScore: 50, wantGPUs: []int{1}},
		{name: "node where the share leaves a fragment", cluster: halfGPUs, node: gpuNode(600), r: share(400), wantScore: 45, wantGPUs: []int{0}},
		{name: "node where the share leaves none", cluster: halfGPUs, node: gpuNode(1000), r: share(400), wantScore: 50, wantGPUs: []int{0}},
		// Filling the half-used GPU removes a 500 fragment for 1-GPU
		// pods: sigmoid(0.5) = 0.622. GPU 1 would leave no whole GPU.
		{name: "share that fills a fragment", cluster: wholeGPUs, node: gpuNode(500, 1000), r: share(500), wantScore: 62, wantGPUs: []int{0}},
		// Ties: the lowest GPU index.
		{name: "equal GPUs", cluster: halfGPUs, node: gpuNode(1000, 1000), r: share(200), wantScore: 50, wantGPUs: []int{0}},
		{name: "whole GPU", cluster: halfGPUs, node: gpuNode(300, 1000, 1000), r: wholeGPU(1), wantScore: 50, wantGPUs: []int{1}},
		{name: "share of a whole GPU goes to a free GPU", cluster: halfGPUs, node: gpuNode(700, 1000), r: share(1000), wantScore: 50, wantGPUs: []int{1}},
		// The CPU-only pod leaves 500 millicores: no typical pod fits,
		// the idle GPU is a fragment: sigmoid(-1) = 0.269.
		{name: "CPU-only pod stranding a GPU", cluster: cpuBound, node: &Node{Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 1500}, r: cpuOnly(1000), wantScore: 26, wantGPUs: nil},
		{name: "CPU-only pod leaving CPU", cluster: cpuBound, node: &Node{Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 2000}, r: cpuOnly(1000), wantScore: 50, wantGPUs: nil},
		// Growth 20 and 15 milli-GPU both truncate to 49.
		{name: "growth 20", cluster: mostlySmall, node: gpuNode(600, 0, 0), r: share(400), wantScore: 49, wantGPUs: []int{0}},
		{name: "growth 15", cluster: mostlySmall, node: gpuNode(550), r: share(400), wantScore: 49, wantGPUs: []int{0}},
	})
}

func TestGPUFleet(t *testing.T) {
	runStrategyCases(t, StrategyGPUFleet, []strategyCase{
		// Among 500-milli pods, GPU 0 (700 free) keeps a 500 that the
		// workload fills: expected leftover 200 -> 0, growth -200,
		// sigmoid(0.2) = 0.549. GPU 1 would keep 800: leftover 300.
		{name: "share leaving a piece the workload fills", cluster: halfGPUs, node: gpuNode(700, 1000), r: share(200), wantScore: 54, wantGPUs: []int{0}},
		// 600 -> 200 or 1000 -> 600: 200 is lost either way (leftover 100
		// -> 200, or 0 -> 100), but only GPU 1 keeps both GPUs open for
		// the next 500 (FGD's growth 0 instead of 200, weighted 0.2):
		// growth 100, sigmoid(-0.1) = 0.475.
		{name: "FGD's term decides between equal wastes", cluster: halfGPUs, node: gpuNode(600, 1000), r: share(400), wantScore: 47, wantGPUs: []int{1}},
		// Filling a half GPU 1-GPU pods cannot use: waste -500,
		// fragmentation -500 x 0.2, sigmoid(0.6) = 0.646.
		{name: "share that fills a piece", cluster: wholeGPUs, node: gpuNode(500, 1000), r: share(500), wantScore: 64, wantGPUs: []int{0}},
		// No GPU pods in the workload: every GPU's share is lost, -300 -
		// 60 on each; the fullest GPU.
		{name: "equal scores pack the fuller GPU", cluster: anything, node: gpuNode(1000, 700, 800), r: share(300), wantScore: 58, wantGPUs: []int{1}},
		{name: "whole GPUs", cluster: halfGPUs, node: gpuNode(1000, 1000, 0, 0), r: wholeGPU(1), wantScore: 50, wantGPUs: []int{0}},
		// cpuBound pods need 2 millicores per milli-GPU: 1500 free
		// millicores feed 750 of the idle 1000 milli-GPU; after the pod,
		// 500 feed 250: waste +500. No cpuBound pod fits any more:
		// fragmentation +1000 x 0.2. sigmoid(-0.7) = 0.332.
		{name: "CPU-only pod taking CPU the GPU needs", cluster: cpuBound, node: &Node{Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 1500}, r: cpuOnly(1000), wantScore: 33, wantGPUs: nil},
		{name: "CPU-only pod leaving enough CPU", cluster: cpuBound, node: &Node{Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 3000}, r: cpuOnly(1000), wantScore: 50, wantGPUs: nil},
		{name: "CPU-only pod on a node without GPUs", cluster: &Cluster{MaxCPU: 32000}, node: &Node{CPUFree: 16000}, r: cpuOnly(4000), wantScore: 50, wantGPUs: nil},
		{name: "share that fits no GPU", cluster: halfGPUs, node: gpuNode(300, 0), r: share(400), wantScore: 0, wantGPUs: nil},
	})
}

// Nodes GPUFleet scores the same are taken in one fixed order, so equal
// pods (a Deployment's replicas) consolidate on one node instead of
// spreading at random.
func TestGPUFleetConsolidatesEqualPods(t *testing.T) {
	s, err := NewStrategy(StrategyGPUFleet)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*Node, 6)
	for i := range nodes {
		nodes[i] = gpuNode(1000, 1000, 1000, 1000)
		nodes[i].Name = fmt.Sprintf("gpu-node-%d", i)
	}
	placed := map[string]int{}
	for range 4 {
		scores := make([]int64, len(nodes))
		gpus := make([][]int, len(nodes))
		for i, n := range nodes {
			scores[i], gpus[i] = s.Score(halfGPUs, n, wholeGPU(1))
		}
		s.Normalize(scores)
		best := 0
		for i := range scores {
			if scores[i] > scores[best] {
				best = i
			}
		}
		if slices.Contains(slices.Delete(slices.Clone(scores), best, best+1), scores[best]) {
			t.Fatalf("normalized scores %v: no single best node", scores)
		}
		nodes[best].Take(wholeGPU(1), gpus[best])
		placed[nodes[best].Name]++
	}
	if len(placed) != 1 {
		t.Errorf("4 equal 1-GPU pods went to %v, want one node", placed)
	}
}

// preferred is the node of nodes the strategy scores highest after
// normalization ("" on a tie).
func preferred(t *testing.T, strategy string, c *Cluster, r Request, nodes map[string]*Node) string {
	t.Helper()
	s, err := NewStrategy(strategy)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var scores []int64
	for name, n := range nodes {
		score, _ := s.Score(c, n, r)
		names, scores = append(names, name), append(scores, score)
	}
	s.Normalize(scores)
	best, bestScore, tie := "", int64(-1), false
	for i, score := range scores {
		switch {
		case score > bestScore:
			best, bestScore, tie = names[i], score, false
		case score == bestScore:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// GPUFleet's tie-break never overturns the coarse order: a node scored
// higher keeps a score at least as high, and among equal scores only the
// first in the fixed node order keeps it.
func TestGPUFleetNormalize(t *testing.T) {
	raw := []int64{50*packScale + 10, 50*packScale + 900, 50*packScale + 900, 49*packScale + 1000, 0*packScale + 5, 0*packScale + 1}
	gpuFleet{}.Normalize(raw)
	if diff := cmp.Diff([]int64{49, 50, 50, 49, 0, 0}, raw); diff != "" {
		t.Errorf("normalized (-want +got):\n%s", diff)
	}
}

func TestStrategiesChooseNodes(t *testing.T) {
	tests := []struct {
		name    string
		cluster *Cluster
		r       Request
		nodes   map[string]*Node
		want    map[string]string // strategy -> preferred node ("" tie)
	}{
		{
			name:    "400 milli among 500-milli pods",
			cluster: halfGPUs,
			r:       share(400),
			nodes:   map[string]*Node{"600-free": gpuNode(600), "idle": gpuNode(1000)},
			want:    map[string]string{StrategyBestFit: "600-free", StrategyFGD: "idle", StrategySpread: "idle"},
		},
		{
			// Both truncate to 49: a tie FGD leaves to the scheduler's
			// random pick.
			name:    "growth differing by less than FGD resolves",
			cluster: mostlySmall,
			r:       share(400),
			nodes:   map[string]*Node{"grows-20": gpuNode(600, 0, 0), "grows-15": gpuNode(550)},
			want:    map[string]string{StrategyFGD: ""},
		},
		{
			name:    "equal growth: the fuller node",
			cluster: halfGPUs,
			r:       wholeGPU(1),
			nodes:   map[string]*Node{"half-used": gpuNode(1000, 1000, 0, 0), "idle": gpuNode(1000, 1000, 1000, 1000)},
			want:    map[string]string{StrategyFGD: "", StrategyBestFit: "half-used", StrategySpread: "idle"},
		},
		{
			// One more 1000-millicore pod still fits on both, so FGD sees
			// no growth; GPUFleet sees that 2500 - 1000 millicores feed
			// only 750 of the tight node's idle 1000 milli-GPU.
			name:    "CPU-only pod goes where the GPUs keep their CPU",
			cluster: cpuBound,
			r:       cpuOnly(1000),
			nodes: map[string]*Node{
				"cpu-rich":  {Name: "cpu-rich", Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 10000},
				"cpu-tight": {Name: "cpu-tight", Model: "V100M16", ModelKnown: true, Free: []int64{1000}, CPUFree: 2500},
			},
			want: map[string]string{StrategyFGD: "", StrategyGPUFleet: "cpu-rich"},
		},
		{
			// 1-GPU pods cannot use half GPUs: completing one beats
			// opening a whole GPU.
			name:    "share completing a GPU",
			cluster: wholeGPUs,
			r:       share(500),
			nodes:   map[string]*Node{"half-used": {Name: "half-used", Model: "V100M16", ModelKnown: true, Free: []int64{500, 0}, CPUFree: 64000}, "idle": {Name: "idle", Model: "V100M16", ModelKnown: true, Free: []int64{1000, 1000}, CPUFree: 64000}},
			want:    map[string]string{StrategyFGD: "half-used", StrategyGPUFleet: "half-used", StrategyBestFit: "half-used"},
		},
	}
	for _, tt := range tests {
		for strategy, want := range tt.want {
			t.Run(tt.name+"/"+strategy, func(t *testing.T) {
				if got := preferred(t, strategy, tt.cluster, tt.r, tt.nodes); got != want {
					t.Errorf("%s prefers %q, want %q", strategy, got, want)
				}
			})
		}
	}
}
