package kubectlgpufleet

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// fixtureNodes: two V100 nodes of 4 GPUs (one with GPU 3 unhealthy), a T4
// node of 1 GPU, and a CPU node.
func fixtureNodes(t *testing.T) []corev1.Node {
	t.Helper()
	var out []corev1.Node
	for _, g := range []localcluster.GPUNode{
		{Name: "v100-a", Model: "V100M16", GPUs: 4},
		{Name: "v100-b", Model: "V100M32", GPUs: 4},
		{Name: "t4-a", Model: "T4", GPUs: 1},
	} {
		n, err := g.Object()
		if err != nil {
			t.Fatal(err)
		}
		if n.Name == "v100-b" {
			n.Annotations = map[string]string{names.AnnotationGPUUnhealthy: "3"}
		}
		out = append(out, *n)
	}
	out = append(out, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cpu-a"}})
	return out
}

// gpuPod is a pod asking for whole GPUs (gpus > 0) or a share (milli),
// bound to node (with indices, unless empty) or pending.
func gpuPod(ns, name, node, indices string, gpus, milli int64, annotations map[string]string) corev1.Pod {
	limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	if gpus > 0 {
		limits[names.ResourceGPU] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	if milli > 0 {
		limits[names.ResourceGPUMilli] = *resource.NewQuantity(milli, resource.DecimalSI)
	}
	a := map[string]string{}
	for k, v := range annotations {
		a[k] = v
	}
	if indices != "" {
		a[names.AnnotationGPUIndices] = indices
	}
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: a},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, NodeName: node, Containers: []corev1.Container{{
			Name: "model", Image: "gpufleet/inference-server", Resources: corev1.ResourceRequirements{Limits: limits, Requests: limits}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if node == "" {
		p.Status.Phase = corev1.PodPending
	}
	return p
}

// fixturePods: shares packed on v100-a GPU 0, a whole GPU, a 2-GPU pod on
// v100-b, a pod bound by another scheduler, one with a stale annotation, a
// finished pod, a CPU pod, and three pending pods.
func fixturePods() []corev1.Pod {
	pods := []corev1.Pod{
		gpuPod("ml", "share-a", "v100-a", "0", 0, 500, nil),
		gpuPod("ml", "share-b", "v100-a", "0", 0, 300, nil),
		gpuPod("ml", "whole", "v100-a", "1", 1, 0, nil),
		gpuPod("ml", "pair", "v100-b", "0,1", 2, 0, nil),
		gpuPod("team", "t4-share", "t4-a", "0", 0, 600, map[string]string{names.AnnotationGPUModel: "T4"}),
		gpuPod("other", "nvidia-placed", "v100-b", "", 1, 0, nil),
		gpuPod("ml", "stale", "v100-a", "7", 0, 100, nil),
		gpuPod("ml", "done", "v100-a", "2", 1, 0, nil),
		gpuPod("ml", "cpu-only", "cpu-a", "", 0, 0, nil),
		gpuPod("ml", "wants-900", "", "", 0, 900, nil),
		gpuPod("ml", "wants-t4", "", "", 0, 600, map[string]string{names.AnnotationGPUModel: "T4"}),
		gpuPod("ml", "wants-a100", "", "", 1, 0, map[string]string{names.AnnotationGPUModel: "A100"}),
	}
	pods[5].Spec.SchedulerName = "default-scheduler"
	pods[7].Status.Phase = corev1.PodSucceeded
	return pods
}
