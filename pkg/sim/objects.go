package sim

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// maxPodsPerNode is generous: traces pack many small pods on big nodes.
const maxPodsPerNode = 1001

// NodeObject is the node as the scheduler sees it: allocatable CPU, memory,
// pods, nvidia.com/gpu and gpufleet.io/gpu-milli, and the GPU model label.
func NodeObject(n Node) *corev1.Node {
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(n.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(n.MemoryMiB<<20, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPodsPerNode, resource.DecimalSI),
	}
	labels := map[string]string{corev1.LabelHostname: n.Name}
	if n.GPUs > 0 {
		alloc[names.ResourceGPU] = *resource.NewQuantity(int64(n.GPUs), resource.DecimalSI)
		alloc[names.ResourceGPUMilli] = *resource.NewQuantity(int64(n.GPUs)*gpupack.MilliPerGPU, resource.DecimalSI)
		product := n.Model
		if m, err := gpumodel.Lookup(n.Model); err == nil {
			product = m.LabelProduct()
		}
		labels[names.LabelGPUProduct] = product
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity: alloc, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

// PodObject is the pod as gpufleet users write it: whole GPUs as
// nvidia.com/gpu, a share of one GPU as gpufleet.io/gpu-milli, allowed
// models in gpufleet.io/gpu-model.
func PodObject(p Pod, uid string) *corev1.Pod {
	req := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(p.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(p.MemoryMiB<<20, resource.BinarySI),
	}
	switch per := p.PerGPUMilli(); {
	case p.GPUs == 0:
	case per >= gpupack.MilliPerGPU:
		req[names.ResourceGPU] = *resource.NewQuantity(int64(p.GPUs), resource.DecimalSI)
	default:
		req[names.ResourceGPUMilli] = *resource.NewQuantity(per, resource.DecimalSI)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "sim", UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			SchedulerName: "gpusim",
			Containers:    []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: req}}},
		},
	}
	if len(p.Models) > 0 && p.GPUs > 0 {
		pod.Annotations = map[string]string{names.AnnotationGPUModel: strings.Join(p.Models, "|")}
	}
	return pod
}
