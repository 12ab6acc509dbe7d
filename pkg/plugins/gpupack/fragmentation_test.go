package gpupack

import (
	"math"
	"testing"
)

// fragNode is a V100M16 node with 8 CPUs free and GPUs free
// [1000, 600, 300, 0]: 1900 milli-GPU idle.
func fragNode() *Node {
	n := gpuNode(1000, 600, 300, 0)
	n.CPUFree = 8000
	return n
}

func TestFragment(t *testing.T) {
	tests := []struct {
		name string
		node *Node
		r    Request
		want int64
	}{
		// The pod cannot use any GPU: every idle milli-GPU is a fragment.
		{name: "CPU-only shape", node: fragNode(), r: cpuOnly(1000), want: 1900},
		{name: "model not accepted", node: fragNode(), r: Request{Milli: 100, CPU: 1000, Models: []string{"T4"}}, want: 1900},
		{name: "model accepted", node: fragNode(), r: Request{Milli: 100, CPU: 1000, Models: []string{"T4", "V100M16"}}, want: 0},
		{name: "node model unknown", node: func() *Node { n := fragNode(); n.ModelKnown = false; return n }(), r: Request{Milli: 100, Models: []string{"V100M16"}}, want: 1900},
		{name: "CPU short", node: fragNode(), r: Request{Milli: 100, CPU: 8001}, want: 1900},
		{name: "CPU just enough", node: fragNode(), r: Request{Milli: 100, CPU: 8000}, want: 0},
		{name: "share does not fit any GPU", node: gpuNode(400, 300, 0), r: share(500), want: 700},
		{name: "too few free GPUs", node: fragNode(), r: wholeGPU(2), want: 1900},
		// The pod fits: GPUs too small for it are fragments.
		{name: "small share uses every GPU with room", node: fragNode(), r: share(200), want: 0},
		{name: "share leaves the GPU with 300 free", node: fragNode(), r: share(500), want: 300},
		{name: "share leaves the GPUs with 600 and 300 free", node: fragNode(), r: share(700), want: 900},
		{name: "share of exactly one GPU", node: fragNode(), r: share(1000), want: 900},
		{name: "one whole GPU: partly used GPUs are fragments", node: fragNode(), r: wholeGPU(1), want: 900},
		{name: "two whole GPUs on a node with two free", node: gpuNode(1000, 250, 1000, 0), r: wholeGPU(2), want: 250},
		{name: "fully used node", node: gpuNode(0, 0, 0, 0), r: share(100), want: 0},
		{name: "fully used node, CPU-only shape", node: gpuNode(0, 0), r: cpuOnly(1), want: 0},
		{name: "node without GPUs", node: gpuNode(), r: share(100), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fragment(tt.node, tt.r); got != tt.want {
				t.Errorf("Fragment(%v, %s) = %d, want %d", tt.node.Free, tt.r, got, tt.want)
			}
		})
	}
}

func TestFragmentation(t *testing.T) {
	typical := []TypicalPod{
		{Request: share(500), Weight: 0.5},    // fragment 300
		{Request: wholeGPU(1), Weight: 0.25},  // fragment 900
		{Request: cpuOnly(500), Weight: 0.25}, // fragment 1900
	}
	tests := []struct {
		name    string
		node    *Node
		typical []TypicalPod
		want    float64
	}{
		{name: "weighted sum", node: fragNode(), typical: typical, want: 0.5*300 + 0.25*900 + 0.25*1900},
		{name: "one shape", node: fragNode(), typical: typical[1:2], want: 0.25 * 900},
		{name: "no typical pods", node: fragNode(), typical: nil, want: 0},
		{name: "empty node holds every shape", node: gpuNode(1000, 1000), typical: typical[:2], want: 0},
		{name: "fully used node", node: gpuNode(0, 0), typical: typical, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fragmentation(tt.node, tt.typical); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Fragmentation(%v) = %v, want %v", tt.node.Free, got, tt.want)
			}
		})
	}
}

func TestFragmentDoesNotChangeTheNode(t *testing.T) {
	n := fragNode()
	Fragmentation(n, []TypicalPod{{Request: share(500), Weight: 1}, {Request: wholeGPU(1), Weight: 1}})
	if got := n.Free; got[0] != 1000 || got[1] != 600 || got[2] != 300 || got[3] != 0 || n.CPUFree != 8000 {
		t.Errorf("Fragmentation changed the node: %+v", n)
	}
}
