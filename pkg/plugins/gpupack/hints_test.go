package gpupack

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
)

func TestHintPodDeleted(t *testing.T) {
	pending := gpuPod("pending", 0, 1, 0)
	tests := []struct {
		name    string
		deleted any
		want    fwk.QueueingHint
	}{
		{name: "whole-GPU pod", deleted: gpuPod("gone", 1000, 2, 0, withIndices("0,1")), want: fwk.Queue},
		{name: "share pod", deleted: gpuPod("gone", 1000, 0, 250), want: fwk.Queue},
		{name: "CPU-only pod", deleted: gpuPod("gone", 4000, 0, 0), want: fwk.QueueSkip},
		{name: "pod without requests", deleted: newPod("gone"), want: fwk.QueueSkip},
		{name: "pod with GPU indices", deleted: gpuPod("gone", 1000, 0, 0, withIndices("3")), want: fwk.Queue},
		{name: "pod with an unreadable GPU request", deleted: gpuPod("gone", 0, 1, 500), want: fwk.Queue},
		{name: "not a pod", deleted: &corev1.Node{}, want: fwk.Queue},
		{name: "nothing", deleted: nil, want: fwk.Queue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&GPUPack{}).hintPodDeleted(testLogger(t), pending, tt.deleted, nil)
			if err != nil {
				t.Fatalf("hintPodDeleted error: %v", err)
			}
			if got != tt.want {
				t.Errorf("hintPodDeleted(%v) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestHintNodeChanged(t *testing.T) {
	twoV100s := gpuPod("pending", 1000, 2, 0, withModels("V100M16|V100M32"))
	anyShare := gpuPod("pending", 1000, 0, 500)
	tests := []struct {
		name string
		pod  *corev1.Pod
		node any
		want fwk.QueueingHint
	}{
		{name: "enough GPUs of an allowed model", pod: twoV100s, node: newK8sNode("n", 8000, 4, withProduct("V100M32")), want: fwk.Queue},
		{name: "exactly enough GPUs", pod: twoV100s, node: newK8sNode("n", 8000, 2, withProduct("V100M16")), want: fwk.Queue},
		{name: "model from the NFD product label", pod: twoV100s, node: newK8sNode("n", 8000, 8, withLabel("nvidia.com/gpu.product", "Tesla-V100-SXM2-16GB")), want: fwk.Queue},
		{name: "GPUs advertised as milli-GPU", pod: twoV100s, node: newK8sNode("n", 8000, 0, withProduct("V100M16"), withMilliAllocatable(2000)), want: fwk.Queue},
		{name: "wrong model", pod: twoV100s, node: newK8sNode("n", 8000, 8, withProduct("T4")), want: fwk.QueueSkip},
		{name: "model unknown", pod: twoV100s, node: newK8sNode("n", 8000, 8), want: fwk.QueueSkip},
		{name: "too few GPUs", pod: twoV100s, node: newK8sNode("n", 8000, 1, withProduct("V100M16")), want: fwk.QueueSkip},
		{name: "too little milli-GPU", pod: twoV100s, node: newK8sNode("n", 8000, 0, withProduct("V100M16"), withMilliAllocatable(1999)), want: fwk.QueueSkip},
		{name: "no GPUs", pod: anyShare, node: newK8sNode("n", 8000, 0), want: fwk.QueueSkip},
		{name: "any model, one GPU", pod: anyShare, node: newK8sNode("n", 8000, 1), want: fwk.Queue},
		{name: "pod request unreadable", pod: gpuPod("pending", 0, 0, 1500), node: newK8sNode("n", 8000, 8), want: fwk.QueueSkip},
		{name: "not a node", pod: twoV100s, node: &corev1.Pod{}, want: fwk.Queue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&GPUPack{}).hintNodeChanged(testLogger(t), tt.pod, nil, tt.node)
			if err != nil {
				t.Fatalf("hintNodeChanged error: %v", err)
			}
			if got != tt.want {
				t.Errorf("hintNodeChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
