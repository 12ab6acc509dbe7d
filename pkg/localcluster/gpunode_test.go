package localcluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestGPUNodeObjectDefaults(t *testing.T) {
	n, err := GPUNode{Name: "gpu-0"}.Object()
	if err != nil {
		t.Fatal(err)
	}
	alloc := n.Status.Allocatable
	for name, want := range map[corev1.ResourceName]int64{ResourceGPU: 8, ResourceGPUMilli: 8000, corev1.ResourcePods: 110, corev1.ResourceCPU: 64} {
		q := alloc[name]
		if q.Value() != want {
			t.Errorf("allocatable %s = %s, want %d", name, q.String(), want)
		}
	}
	wantLabels := map[string]string{
		LabelGPUProduct:          "Tesla-V100-SXM2-16GB",
		LabelGPUCount:            "8",
		LabelGPUMemoryMiB:        "16384",
		LabelGPUArch:             "volta",
		"nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB",
		"accelerator":            "nvidia-tesla-v100",
		LabelSimulated:           "true",
		corev1.LabelHostname:     "gpu-0",
	}
	for k, v := range wantLabels {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if !NodeReady(n) {
		t.Error("node is not Ready")
	}
}

func TestGPUNodeObjectOverrides(t *testing.T) {
	n, err := GPUNode{Name: "a", Model: "V100M32", GPUs: 4, CPU: "32", Memory: "128Gi", Pods: 20, Labels: map[string]string{"zone": "z1", LabelGPUArch: "custom"}}.Object()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range []string{LabelGPUProduct, LabelGPUCount, LabelGPUMemoryMiB, LabelGPUArch, "zone"} {
		got[k] = n.Labels[k]
	}
	want := map[string]string{LabelGPUProduct: "Tesla-V100-SXM2-32GB", LabelGPUCount: "4", LabelGPUMemoryMiB: "32768", LabelGPUArch: "custom", "zone": "z1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	mem := n.Status.Capacity[corev1.ResourceMemory]
	if mem.String() != "128Gi" {
		t.Errorf("memory = %s", mem.String())
	}
	gm := n.Status.Capacity[ResourceGPUMilli]
	if gm.Value() != 4000 {
		t.Errorf("gpu-milli = %s", gm.String())
	}
}

func TestGPUNodeObjectErrors(t *testing.T) {
	for _, tc := range []struct {
		node GPUNode
		want string
	}{
		{GPUNode{}, "needs a name"},
		{GPUNode{Name: "x", Model: "K80"}, `unknown GPU model "K80"`},
		{GPUNode{Name: "x", GPUs: -1}, "negative"},
		{GPUNode{Name: "x", CPU: "lots"}, `cpu "lots"`},
	} {
		_, err := tc.node.Object()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.node, err, tc.want)
		}
	}
}

func TestWithoutTaint(t *testing.T) {
	in := []corev1.Taint{{Key: corev1.TaintNodeNotReady}, {Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	out := withoutTaint(in, corev1.TaintNodeNotReady)
	if len(out) != 1 || out[0].Key != "gpu" || len(in) != 2 || in[0].Key != corev1.TaintNodeNotReady {
		t.Errorf("withoutTaint: got %v, input now %v", out, in)
	}
}
