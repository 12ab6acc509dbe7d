package gpupack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// strategyCase is one Score call and what it must return.
type strategyCase struct {
	name      string
	cluster   *Cluster
	node      *Node
	r         Request
	wantScore int64
	wantGPUs  []int
}

// runStrategyCases checks each case's score and GPUs under strategy name.
func runStrategyCases(t *testing.T, name string, tests []strategyCase) {
	t.Helper()
	s, err := NewStrategy(name)
	if err != nil {
		t.Fatalf("NewStrategy(%q): %v", name, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, gpus := s.Score(tt.cluster, tt.node, tt.r)
			if name == StrategyGPUFleet {
				score /= packScale // FGD's score; the rest is the packing tie-break
			}
			if score != tt.wantScore {
				t.Errorf("%s.Score(%v, %s) score = %d, want %d", name, tt.node.Free, tt.r, score, tt.wantScore)
			}
			if diff := cmp.Diff(tt.wantGPUs, gpus, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s.Score(%v, %s) GPUs mismatch (-want +got):\n%s", name, tt.node.Free, tt.r, diff)
			}
		})
	}
}

// eightGPUs is the largest node of the strategy tests: 32 CPUs, 8 GPUs.
var eightGPUs = &Cluster{MaxCPU: 32000, MaxGPUMilli: 8000}

// halfUsed is an 8-GPU node with GPUs 0-3 and half its CPU taken.
func halfUsed() *Node {
	n := gpuNode(0, 0, 0, 0, 1000, 1000, 1000, 1000)
	n.CPUFree = 16000
	return n
}

// idleNode is an 8-GPU node with nothing allocated.
func idleNode() *Node {
	n := gpuNode(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000)
	n.CPUFree = 32000
	return n
}

// mixedNode is a 4-GPU node with 16 CPUs free and GPUs partly used.
func mixedNode(free ...int64) *Node {
	n := gpuNode(free...)
	n.CPUFree = 16000
	return n
}

func TestBestFit(t *testing.T) {
	runStrategyCases(t, StrategyBestFit, []strategyCase{
		// 1 - (0.5 x 15000/32000 + 0.5 x 3000/8000) = 0.578
		{name: "fuller node", cluster: eightGPUs, node: halfUsed(), r: wholeGPU(1), wantScore: 57, wantGPUs: []int{4}},
		// 1 - (0.5 x 31000/32000 + 0.5 x 7000/8000) = 0.078
		{name: "emptier node", cluster: eightGPUs, node: idleNode(), r: wholeGPU(1), wantScore: 7, wantGPUs: []int{0}},
		// 1 - (0.5 x 15000/32000 + 0.5 x 1800/8000) = 0.653
		{name: "share on the fullest GPU that holds it", cluster: eightGPUs, node: mixedNode(1000, 400, 200, 500), r: share(300), wantScore: 65, wantGPUs: []int{1}},
		// 1 - (0.5 x 15000/32000 + 0.5 x 1900/8000) = 0.647
		{name: "share on the lowest of equally full GPUs", cluster: eightGPUs, node: mixedNode(1000, 500, 200, 500), r: share(300), wantScore: 64, wantGPUs: []int{1}},
		// 1 - (0.5 x 15000/32000 + 0.5 x 2400/8000) = 0.616
		{name: "share exactly filling a GPU", cluster: eightGPUs, node: mixedNode(300, 400, 1000, 1000), r: share(300), wantScore: 61, wantGPUs: []int{0}},
		// 1 - (0.5 x 12000/32000 + 0.5 x 4000/8000) = 0.5625
		{name: "CPU-only pod", cluster: eightGPUs, node: halfUsed(), r: cpuOnly(4000), wantScore: 56, wantGPUs: nil},
	})
}

func TestSpread(t *testing.T) {
	runStrategyCases(t, StrategySpread, []strategyCase{
		// 100 x 3000/8000
		{name: "fuller node", cluster: eightGPUs, node: halfUsed(), r: wholeGPU(1), wantScore: 37, wantGPUs: []int{4}},
		// 100 x 7000/8000
		{name: "emptier node", cluster: eightGPUs, node: idleNode(), r: wholeGPU(1), wantScore: 87, wantGPUs: []int{0}},
		// 100 x 2300/4000
		{name: "share on the emptiest GPU", cluster: eightGPUs, node: mixedNode(400, 1000, 200, 1000), r: share(300), wantScore: 57, wantGPUs: []int{1}},
		{name: "share on the only GPU that holds it", cluster: eightGPUs, node: mixedNode(0, 0, 300, 0), r: share(300), wantScore: 0, wantGPUs: []int{2}},
		// 100 x 12000/32000: CPU-only pods spread by CPU
		{name: "CPU-only pod", cluster: eightGPUs, node: halfUsed(), r: cpuOnly(4000), wantScore: 37, wantGPUs: nil},
		{name: "CPU-only pod on a node without GPUs", cluster: eightGPUs, node: &Node{CPUFree: 32000}, r: cpuOnly(8000), wantScore: 75, wantGPUs: nil},
	})
}

func TestBestFitAndSpreadDisagree(t *testing.T) {
	nodes := map[string]*Node{"half-used": halfUsed(), "idle": idleNode()}
	tests := []struct {
		strategy string
		want     string
	}{
		{strategy: StrategyBestFit, want: "half-used"},
		{strategy: StrategySpread, want: "idle"},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			s, err := NewStrategy(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			best, bestScore := "", int64(-1)
			for name, n := range nodes {
				if score, _ := s.Score(eightGPUs, n, wholeGPU(2)); score > bestScore {
					best, bestScore = name, score
				}
			}
			if best != tt.want {
				t.Errorf("%s prefers node %s for 2 GPUs, want %s", tt.strategy, best, tt.want)
			}
		})
	}
}

func TestNewStrategy(t *testing.T) {
	for _, name := range Strategies {
		t.Run(name, func(t *testing.T) {
			s, err := NewStrategy(name)
			if err != nil {
				t.Fatalf("NewStrategy(%q) error: %v", name, err)
			}
			if s.Name() != name {
				t.Errorf("NewStrategy(%q).Name() = %q", name, s.Name())
			}
		})
	}
	if diff := cmp.Diff([]string{"GPUFleet", "FGD", "BestFit", "Spread", "Random", "DotProduct", "GPUPacking", "GPUClustering"}, Strategies); diff != "" {
		t.Errorf("Strategies mismatch (-want +got):\n%s", diff)
	}

	_, err := NewStrategy("MostAllocated")
	if err == nil {
		t.Fatal(`NewStrategy("MostAllocated") succeeded, want an error`)
	}
	for _, want := range []string{`"MostAllocated"`, "GPUFleet", "FGD", "BestFit", "Spread"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewStrategy error %q does not name %s", err, want)
		}
	}
}

func TestStrategiesLeaveTheNodeAlone(t *testing.T) {
	typical := []TypicalPod{{Request: share(500), Weight: 0.5}, {Request: wholeGPU(2), Weight: 0.5}}
	c := &Cluster{Typical: typical, MaxCPU: 32000, MaxGPUMilli: 4000}
	for _, name := range Strategies {
		for _, r := range []Request{share(300), share(1000), wholeGPU(2), cpuOnly(2000)} {
			t.Run(name+"/"+r.String(), func(t *testing.T) {
				s, err := NewStrategy(name)
				if err != nil {
					t.Fatal(err)
				}
				n := mixedNode(1000, 600, 1000, 300)
				n.Links = [][]int{{0, 1, 2, 0}, {1, 0, 0, 0}, {2, 0, 0, 1}, {0, 0, 1, 0}}
				before := n.Clone()
				_, gpus := s.Score(c, n, r)
				if diff := cmp.Diff(before, n); diff != "" {
					t.Errorf("Score changed the node (-before +after):\n%s", diff)
				}
				if !n.CanTake(r, gpus) && r.WantsGPU() {
					t.Errorf("Score chose GPUs %v that cannot take %s on %v", gpus, r, n.Free)
				}
			})
		}
	}
}
