package cost

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// PodUsageFromPod fills what a pod object says of a PodUsage: identity,
// node, start and end, allocated GPUs and GPU indices. The caller adds the
// workload (through owner references), the node's model and capacity type
// (gpumodel.FromNodeLabels, SpotFromNodeLabels), use and request rate.
func PodUsageFromPod(pod *corev1.Pod, workloadKind, workload string) PodUsage {
	p := PodUsage{
		Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID),
		WorkloadKind: workloadKind, Workload: workload,
		Node:          pod.Spec.NodeName,
		End:           PodEnd(pod),
		AllocatedGPUs: AllocatedGPUs(pod),
		GPUIndices:    GPUIndices(pod),
	}
	if pod.Status.StartTime != nil {
		p.Start = pod.Status.StartTime.Time
	}
	return p
}

// AllocatedGPUs is a pod's effective nvidia.com/gpu request plus its
// gpufleet.io/gpu-milli request / 1000, counted as the kubelet does (init
// containers, sidecars, overhead).
func AllocatedGPUs(pod *corev1.Pod) float64 {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	gpus := reqs[names.ResourceGPU]
	milli := reqs[names.ResourceGPUMilli]
	return float64(gpus.Value()) + float64(milli.Value())/1000
}

// GPUIndices reads the gpufleet.io/gpu-indices annotation ("0,3"); nil when
// it is absent or malformed.
func GPUIndices(pod *corev1.Pod) []int {
	v, ok := pod.Annotations[names.AnnotationGPUIndices]
	if !ok || v == "" {
		return nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || i < 0 || i >= maxGPUsPerNode {
			return nil
		}
		out = append(out, i)
	}
	return out
}

// PodEnd is when a finished pod (Succeeded or Failed) released its GPUs:
// the last of its containers' finish times. Zero for a pod still running or
// whose finish time is unknown.
func PodEnd(pod *corev1.Pod) time.Time {
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		return time.Time{}
	}
	var end time.Time
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if t := cs.State.Terminated; t != nil && t.FinishedAt.After(end) {
				end = t.FinishedAt.Time
			}
		}
	}
	return end
}

// spotLabels are the node labels cloud providers and autoscalers use to
// mark spot or preemptible capacity, with their spot values (compared
// without regard to case).
var spotLabels = map[string][]string{
	"karpenter.sh/capacity-type":            {"spot"},
	"eks.amazonaws.com/capacityType":        {"spot"},
	"cloud.google.com/gke-spot":             {"true"},
	"cloud.google.com/gke-preemptible":      {"true"},
	"kubernetes.azure.com/scalesetpriority": {"spot"},
	"node.kubernetes.io/lifecycle":          {"spot", "preemptible"},
}

// SpotFromNodeLabels says whether a node's labels mark it as spot or
// preemptible capacity (Karpenter, EKS, GKE, AKS conventions).
func SpotFromNodeLabels(labels map[string]string) bool {
	for key, values := range spotLabels {
		v, ok := labels[key]
		if !ok {
			continue
		}
		for _, want := range values {
			if strings.EqualFold(v, want) {
				return true
			}
		}
	}
	return false
}
