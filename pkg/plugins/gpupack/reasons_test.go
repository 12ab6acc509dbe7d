package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	fwk "k8s.io/kube-scheduler/framework"
)

func TestFitStatus(t *testing.T) {
	t4 := func(free ...int64) *Node {
		n := gpuNode(free...)
		n.Model = "T4"
		return n
	}
	unlabelled := func(free ...int64) *Node {
		n := gpuNode(free...)
		n.Model, n.ModelKnown = "", false
		return n
	}
	v100s := []string{"V100M16", "V100M32"}
	tests := []struct {
		name     string
		node     *Node
		r        Request
		wantCode fwk.Code // Success: the node fits
		want     string
	}{
		{name: "share fits", node: gpuNode(300, 470), r: share(470), wantCode: fwk.Success},
		{name: "whole GPUs fit", node: gpuNode(1000, 0, 1000), r: wholeGPU(2), wantCode: fwk.Success},
		{name: "allowed model", node: gpuNode(1000), r: Request{GPUs: 1, Models: v100s}, wantCode: fwk.Success},
		{name: "unlabelled node, any model", node: unlabelled(1000), r: wholeGPU(1), wantCode: fwk.Success},
		{
			name: "no single GPU with room", node: gpuNode(469, 300, 0), r: share(470),
			wantCode: fwk.Unschedulable, want: "node(s) had no single GPU with 470 free milli-GPU",
		},
		{
			name: "shares spread over GPUs do not add up", node: gpuNode(400, 400), r: share(800),
			wantCode: fwk.Unschedulable, want: "node(s) had no single GPU with 800 free milli-GPU",
		},
		{
			name: "too few free GPUs", node: gpuNode(1000, 999, 1000, 0), r: wholeGPU(3),
			wantCode: fwk.Unschedulable, want: "node(s) had fewer than 3 free GPU(s)",
		},
		{
			name: "no free GPU", node: gpuNode(500), r: wholeGPU(1),
			wantCode: fwk.Unschedulable, want: "node(s) had fewer than 1 free GPU(s)",
		},
		{
			name: "other model", node: t4(1000), r: Request{Milli: 470, Models: v100s},
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had GPU model T4 (pod requires V100M16|V100M32)",
		},
		{
			name: "unknown model", node: unlabelled(1000), r: Request{GPUs: 1, Models: []string{"A100"}},
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had no GPU model label (pod requires A100)",
		},
		{
			name: "too few GPUs however empty", node: gpuNode(1000, 1000), r: wholeGPU(4),
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had only 2 GPUs (pod requires 4)",
		},
		{
			name: "no GPUs", node: gpuNode(), r: share(100),
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had no GPUs",
		},
		{
			name: "no GPUs comes before the model", node: unlabelled(), r: Request{GPUs: 1, Models: v100s},
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had no GPUs",
		},
		{
			name: "the model comes before the count", node: t4(1000), r: Request{GPUs: 2, Models: v100s},
			wantCode: fwk.UnschedulableAndUnresolvable, want: "node(s) had GPU model T4 (pod requires V100M16|V100M32)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := fitStatus(tt.node, tt.r)
			if tt.wantCode == fwk.Success {
				if !st.IsSuccess() {
					t.Fatalf("fitStatus(%v, %s) = %v, want success", tt.node.Free, tt.r, st)
				}
				return
			}
			if st.Code() != tt.wantCode {
				t.Errorf("fitStatus(%v, %s) code = %v, want %v", tt.node.Free, tt.r, st.Code(), tt.wantCode)
			}
			if diff := cmp.Diff([]string{tt.want}, st.Reasons()); diff != "" {
				t.Errorf("fitStatus(%v, %s) reasons mismatch (-want +got):\n%s", tt.node.Free, tt.r, diff)
			}
		})
	}
}

// Nodes that fail for the same reason must share one reason string, so
// the scheduler's summary counts them together.
func TestFitStatusReasonsDoNotNameTheNode(t *testing.T) {
	a, b := gpuNode(100, 200), gpuNode(300)
	a.Name, b.Name = "node-a", "node-b"
	sa, sb := fitStatus(a, share(470)), fitStatus(b, share(470))
	if diff := cmp.Diff(sa.Reasons(), sb.Reasons()); diff != "" {
		t.Errorf("reasons of two nodes without room differ (-a +b):\n%s", diff)
	}
}
