package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestLedgerReservations(t *testing.T) {
	type reservation struct {
		uid  types.UID
		node string
		gpus []int
	}
	tests := []struct {
		name    string
		pods    []*corev1.Pod
		reserve []reservation
		forget  []types.UID
		want    *Node
	}{
		{
			name:    "assumed pod on its reserved GPUs",
			pods:    []*corev1.Pod{gpuPod("assumed", 0, 1, 0)},
			reserve: []reservation{{uid: "assumed", node: "gpu-1", gpus: []int{2}}},
			want:    ledgerNode(32000, 0, 1000, 1000, 0, 1000),
		},
		{
			name:    "assumed share on its reserved GPU",
			pods:    []*corev1.Pod{gpuPod("assumed", 0, 0, 300)},
			reserve: []reservation{{uid: "assumed", node: "gpu-1", gpus: []int{3}}},
			want:    ledgerNode(32000, 0, 1000, 1000, 1000, 700),
		},
		{
			name:    "forgotten reservation: the ledger places the pod",
			pods:    []*corev1.Pod{gpuPod("assumed", 0, 1, 0)},
			reserve: []reservation{{uid: "assumed", node: "gpu-1", gpus: []int{2}}},
			forget:  []types.UID{"assumed"},
			want:    ledgerNode(32000, 1, 0, 1000, 1000, 1000),
		},
		{
			name:    "reservation on another node is not this node's",
			pods:    []*corev1.Pod{gpuPod("assumed", 0, 1, 0)},
			reserve: []reservation{{uid: "assumed", node: "gpu-2", gpus: []int{2}}},
			want:    ledgerNode(32000, 1, 0, 1000, 1000, 1000),
		},
		{
			name: "a later reservation replaces an earlier one",
			pods: []*corev1.Pod{gpuPod("assumed", 0, 1, 0)},
			reserve: []reservation{
				{uid: "assumed", node: "gpu-1", gpus: []int{1}},
				{uid: "assumed", node: "gpu-1", gpus: []int{3}},
			},
			want: ledgerNode(32000, 0, 1000, 1000, 1000, 0),
		},
		{
			name:    "annotation wins over reservation",
			pods:    []*corev1.Pod{gpuPod("bound", 0, 1, 0, withIndices("1"))},
			reserve: []reservation{{uid: "bound", node: "gpu-1", gpus: []int{2}}},
			want:    ledgerNode(32000, 0, 1000, 0, 1000, 1000),
		},
		{
			name:    "reservation covers an unusable annotation",
			pods:    []*corev1.Pod{gpuPod("bound", 0, 1, 0, withIndices("9"))},
			reserve: []reservation{{uid: "bound", node: "gpu-1", gpus: []int{2}}},
			want:    ledgerNode(32000, 0, 1000, 1000, 0, 1000),
		},
		{
			name:    "reservation of a pod not on the node counts nothing",
			reserve: []reservation{{uid: "elsewhere", node: "gpu-1", gpus: []int{0}}},
			want:    ledgerNode(32000, 0, 1000, 1000, 1000, 1000),
		},
		{
			name:   "forgetting an unknown pod changes nothing",
			pods:   []*corev1.Pod{gpuPod("bound", 0, 1, 0, withIndices("0"))},
			forget: []types.UID{"unknown"},
			want:   ledgerNode(32000, 0, 0, 1000, 1000, 1000),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger()
			for _, r := range tt.reserve {
				l.Reserve(r.uid, r.node, r.gpus)
			}
			for _, uid := range tt.forget {
				l.Forget(uid)
			}
			got := l.Node(testLogger(t), newNodeInfo(v100Node(4), tt.pods...))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), ignoreKinds); diff != "" {
				t.Errorf("Ledger.Node mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLedgerReserved(t *testing.T) {
	l := NewLedger()
	if gpus, ok := l.Reserved("p"); ok {
		t.Fatalf("Reserved before Reserve = %v, true", gpus)
	}
	l.Reserve("p", "gpu-1", []int{3, 1})
	gpus, ok := l.Reserved("p")
	if !ok {
		t.Fatal("Reserved after Reserve = false")
	}
	if diff := cmp.Diff([]int{3, 1}, gpus, ignoreKinds); diff != "" {
		t.Errorf("Reserved mismatch (-want +got):\n%s", diff)
	}
	l.Forget("p")
	if gpus, ok := l.Reserved("p"); ok {
		t.Errorf("Reserved after Forget = %v, true", gpus)
	}
}

func TestLedgerCache(t *testing.T) {
	logger := testLogger(t)
	l := NewLedger()
	ni := newNodeInfo(v100Node(4), gpuPod("bound", 0, 1, 0, withIndices("0")), gpuPod("assumed", 0, 1, 0))

	first := l.Node(logger, ni)
	if again := l.Node(logger, ni); again != first {
		t.Errorf("same NodeInfo generation: got a new account %+v, want the cached one", again)
	}

	l.Reserve("other", "gpu-2", []int{0})
	if again := l.Node(logger, ni); again != first {
		t.Errorf("a reservation on another node rebuilt this node's account")
	}

	l.Reserve("assumed", "gpu-1", []int{3})
	reserved := l.Node(logger, ni)
	if reserved == first {
		t.Fatal("a reservation on the node returned the cached account")
	}
	if diff := cmp.Diff(ledgerNode(32000, 0, 0, 1000, 1000, 0), reserved, ignoreKinds); diff != "" {
		t.Errorf("after Reserve (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ledgerNode(32000, 1, 0, 0, 1000, 1000), first, ignoreKinds); diff != "" {
		t.Errorf("Reserve changed an account handed out before (-want +got):\n%s", diff)
	}
	if again := l.Node(logger, ni); again != reserved {
		t.Errorf("the account after Reserve is not cached")
	}

	l.Forget("assumed")
	if diff := cmp.Diff(ledgerNode(32000, 1, 0, 0, 1000, 1000), l.Node(logger, ni), ignoreKinds); diff != "" {
		t.Errorf("after Forget (-want +got):\n%s", diff)
	}

	before := l.Node(logger, ni)
	ni.AddPod(gpuPod("new", 0, 0, 500, withIndices("2")))
	after := l.Node(logger, ni)
	if after == before {
		t.Fatal("a new NodeInfo generation returned the cached account")
	}
	if diff := cmp.Diff(ledgerNode(32000, 1, 0, 0, 500, 1000), after, ignoreKinds); diff != "" {
		t.Errorf("after AddPod (-want +got):\n%s", diff)
	}
}

func TestLedgerCacheMovedReservation(t *testing.T) {
	logger := testLogger(t)
	l := NewLedger()
	ni := newNodeInfo(v100Node(4), gpuPod("assumed", 0, 1, 0))
	l.Reserve("assumed", "gpu-1", []int{3})
	if diff := cmp.Diff(ledgerNode(32000, 0, 1000, 1000, 1000, 0), l.Node(logger, ni), ignoreKinds); diff != "" {
		t.Fatalf("with the reservation (-want +got):\n%s", diff)
	}
	// The pod is re-reserved on another node: this node's account must
	// not keep the old reservation.
	l.Reserve("assumed", "gpu-2", []int{0})
	if diff := cmp.Diff(ledgerNode(32000, 1, 0, 1000, 1000, 1000), l.Node(logger, ni), ignoreKinds); diff != "" {
		t.Errorf("after the reservation moved (-want +got):\n%s", diff)
	}
}

// A node that lost GPUs after a pod got them (the device plugin dropped an
// unhealthy one) still gets an account: the pod's stale reservation is not
// used, its share is placed where it fits.
func TestLedgerReservationBeyondShrunkNode(t *testing.T) {
	l := NewLedger()
	pod := gpuPod("p", 0, 1, 0, withIndices("7"))
	l.Reserve(pod.UID, "gpu-1", []int{7})
	n := l.Node(testLogger(t), newNodeInfo(newK8sNode("gpu-1", 64000, 4), pod))
	if n.Idle() != 3000 || n.Unattributed != 1 {
		t.Errorf("node after losing GPU 7: free %v, unattributed %d; want 3000 milli idle and the pod placed by the ledger", n.Free, n.Unattributed)
	}
}
