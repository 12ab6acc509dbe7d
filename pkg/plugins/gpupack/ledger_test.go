package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// v100Node is a Node object with 32 CPUs and gpus V100M16 GPUs.
func v100Node(gpus int64, opts ...nodeOpt) *corev1.Node {
	return newK8sNode("gpu-1", 32000, gpus, append([]nodeOpt{withProduct("V100M16")}, opts...)...)
}

// ledgerNode is the account the ledger should keep of v100Node.
func ledgerNode(cpuFree int64, unattributed int, free ...int64) *Node {
	return &Node{Name: "gpu-1", Model: "V100M16", ModelKnown: true, Free: free, CPUFree: cpuFree, Unattributed: unattributed}
}

func TestLedgerCountsPodsOnTheirGPUs(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		pods []*corev1.Pod
		want *Node
	}{
		{
			name: "empty node",
			node: v100Node(4),
			want: ledgerNode(32000, 0, 1000, 1000, 1000, 1000),
		},
		{
			name: "bound pods on their annotated GPUs",
			node: v100Node(4),
			pods: []*corev1.Pod{
				gpuPod("a", 1000, 1, 0, withIndices("2")),
				gpuPod("b", 1000, 0, 300, withIndices("1")),
				gpuPod("c", 1000, 2, 0, withIndices("3,0")),
				gpuPod("d", 1000, 0, 250, withIndices("1")),
				gpuPod("cpu", 4000, 0, 0),
			},
			want: ledgerNode(24000, 0, 0, 450, 0, 0),
		},
		{
			name: "share on the fullest GPU, whole GPU on the lowest free",
			node: v100Node(4),
			pods: []*corev1.Pod{
				gpuPod("bound", 0, 0, 300, withIndices("2")),
				gpuPod("share", 0, 0, 500),
				gpuPod("whole", 0, 1, 0),
			},
			want: ledgerNode(32000, 2, 0, 1000, 200, 1000),
		},
		{
			name: "annotated pods first, whatever their order",
			node: v100Node(2),
			pods: []*corev1.Pod{
				gpuPod("unannotated", 0, 1, 0),
				gpuPod("bound", 0, 1, 0, withIndices("0")),
			},
			want: ledgerNode(32000, 1, 0, 0),
		},
		{
			name: "unusable annotations are placed by the ledger",
			node: v100Node(8),
			pods: []*corev1.Pod{
				gpuPod("not-a-number", 0, 1, 0, withIndices("x")),
				gpuPod("out-of-range", 0, 1, 0, withIndices("8")),
				gpuPod("too-many", 0, 1, 0, withIndices("6,7")),
				gpuPod("too-few", 0, 2, 0, withIndices("7")),
				gpuPod("twice", 0, 2, 0, withIndices("7,7")),
				gpuPod("empty", 0, 0, 100, withIndices("")),
			},
			// 1+1+1+2+2 whole GPUs on 0..6, the share on GPU 7.
			want: ledgerNode(32000, 6, 0, 0, 0, 0, 0, 0, 0, 900),
		},
		{
			name: "over-committed GPUs never go negative",
			node: v100Node(2),
			pods: []*corev1.Pod{
				gpuPod("a", 0, 1, 0, withIndices("0")),
				gpuPod("b", 0, 1, 0, withIndices("0")),
				gpuPod("c", 0, 0, 600, withIndices("1")),
				gpuPod("d", 0, 0, 600, withIndices("1")),
				gpuPod("e", 0, 2, 0),
				gpuPod("f", 0, 0, 100),
			},
			want: ledgerNode(32000, 2, 0, 0),
		},
		{
			name: "over-committed share lands on the GPU with most room",
			node: v100Node(3),
			pods: []*corev1.Pod{
				gpuPod("a", 0, 0, 800, withIndices("0")),
				gpuPod("b", 0, 0, 700, withIndices("1")),
				gpuPod("c", 0, 0, 900, withIndices("2")),
				gpuPod("d", 0, 0, 400),
			},
			want: ledgerNode(32000, 1, 200, 0, 100),
		},
		{
			name: "over-committed whole GPUs land on the GPUs with most room",
			node: v100Node(3),
			pods: []*corev1.Pod{
				gpuPod("a", 0, 0, 100, withIndices("0")),
				gpuPod("b", 0, 0, 900, withIndices("1")),
				gpuPod("c", 0, 0, 500, withIndices("2")),
				gpuPod("d", 0, 2, 0),
			},
			want: ledgerNode(32000, 1, 0, 100, 0),
		},
		{
			name: "pod with whole GPUs and a share counts whole GPUs",
			node: v100Node(2),
			pods: []*corev1.Pod{gpuPod("both", 0, 1, 500, withIndices("1"))},
			want: ledgerNode(32000, 0, 1000, 0),
		},
		{
			name: "GPUs advertised as milli-GPU",
			node: newK8sNode("gpu-1", 32000, 0, withProduct("V100M16"), withMilliAllocatable(3000)),
			pods: []*corev1.Pod{gpuPod("a", 0, 0, 400, withIndices("2"))},
			want: ledgerNode(32000, 0, 1000, 1000, 600),
		},
		{
			name: "node without GPUs",
			node: newK8sNode("gpu-1", 8000, 0),
			pods: []*corev1.Pod{gpuPod("cpu", 2000, 0, 0)},
			want: &Node{Name: "gpu-1", Free: []int64{}, CPUFree: 6000},
		},
		{
			name: "model unknown",
			node: newK8sNode("gpu-1", 8000, 1),
			want: &Node{Name: "gpu-1", Free: []int64{1000}, CPUFree: 8000},
		},
		{
			name: "model from NVIDIA feature discovery",
			node: newK8sNode("gpu-1", 8000, 1, withLabel("nvidia.com/gpu.product", "Tesla-T4")),
			want: &Node{Name: "gpu-1", Model: "T4", ModelKnown: true, Free: []int64{1000}, CPUFree: 8000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLedger().Node(testLogger(t), newNodeInfo(tt.node, tt.pods...))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), ignoreKinds); diff != "" {
				t.Errorf("Ledger.Node mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLedgerTopology(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		want [][]int
	}{
		{name: "DGX-1", node: v100Node(8, withTopology(dgx1Topology)), want: dgx1Links(t)},
		{name: "malformed topology is ignored", node: v100Node(8, withTopology("0-1:2,0-9:1")), want: nil},
		{name: "no topology", node: v100Node(8), want: nil},
		{name: "single GPU", node: v100Node(1, withTopology("0-1:1")), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLedger().Node(testLogger(t), newNodeInfo(tt.node))
			if diff := cmp.Diff(tt.want, got.Links, ignoreKinds); diff != "" {
				t.Errorf("Links mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLedgerNodeWithoutNodeObject(t *testing.T) {
	got := NewLedger().Node(testLogger(t), framework.NewNodeInfo())
	if diff := cmp.Diff(&Node{}, got, ignoreKinds); diff != "" {
		t.Errorf("Ledger.Node of a NodeInfo without node mismatch (-want +got):\n%s", diff)
	}
}

// The ledger counts a node's GPU pods by kind (GPUClustering's input):
// shares under 0, k-GPU pods under k; CPU-only pods not at all.
func TestLedgerKinds(t *testing.T) {
	ni := newNodeInfo(v100Node(8),
		gpuPod("a", 0, 0, 300, withIndices("0")),
		gpuPod("b", 0, 0, 200, withIndices("0")),
		gpuPod("c", 0, 2, 0, withIndices("1,2")),
		newPod("cpu", withContainer(res(1000, 0, 0))))
	got := NewLedger().Node(testLogger(t), ni).Kinds
	if diff := cmp.Diff(map[int]int{0: 2, 2: 1}, got); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
}
