package gpupack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// A GPU the agent reports unhealthy drops out of the kubelet's allocatable
// (7 of 8 left): the ledger keeps 8 GPUs from the agent's count label, so
// pods keep their indices, and gives the failed one no room.
func TestLedgerUnhealthyGPU(t *testing.T) {
	node := v100Node(7, withLabel(names.LabelGPUCount, "8"))
	node.Annotations = map[string]string{names.AnnotationGPUUnhealthy: "3"}
	pods := []*corev1.Pod{gpuPod("on7", 1000, 1, 0, withIndices("7")), gpuPod("share", 1000, 0, 250, withIndices("3"))}
	got := NewLedger().Node(testLogger(t), newNodeInfo(node, pods...))
	want := ledgerNode(30000, 0, 1000, 1000, 1000, 0, 1000, 1000, 1000, 0)
	want.Unhealthy = []int{3}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), ignoreKinds); diff != "" {
		t.Errorf("Ledger.Node mismatch (-want +got):\n%s", diff)
	}
	st := fitStatus(got, wholeGPU(7))
	if st.IsSuccess() || !strings.Contains(st.Message(), "unhealthy GPUs 3") {
		t.Errorf("7 GPUs on a node with GPU 3 failed and one taken: %v, want a reason naming the unhealthy GPU", st)
	}
	if !got.FitsGPU(wholeGPU(6)) {
		t.Error("6 whole GPUs should fit the 6 healthy free ones")
	}

	// Without the annotation nothing changes; a malformed one is ignored.
	for _, v := range []string{"", "9", "x"} {
		node.Annotations[names.AnnotationGPUUnhealthy] = v
		got := NewLedger().Node(testLogger(t), newNodeInfo(node))
		if len(got.Free) != 7 || len(got.Unhealthy) != 0 {
			t.Errorf("annotation %q: %d GPUs, unhealthy %v; want the allocatable's 7, none unhealthy", v, len(got.Free), got.Unhealthy)
		}
	}
}
