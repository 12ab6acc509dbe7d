package deviceplugin

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// PodLookup finds the pods bound to this node by name: gpu-agent's pod
// index (attribution.PodIndex), which keeps each pod's annotation, GPU
// requests, phase and start time.
type PodLookup interface {
	ByName(namespace, name string) (*corev1.Pod, bool)
}

// containerRequest is a container's request of resource (extended
// resources are requested as limits; requests equal them).
func containerRequest(c *corev1.Container, resource string) int64 {
	rn := corev1.ResourceName(resource)
	if q, ok := c.Resources.Limits[rn]; ok {
		return q.Value()
	}
	if q, ok := c.Resources.Requests[rn]; ok {
		return q.Value()
	}
	return 0
}

// isSidecar says whether an init container keeps running beside the app
// containers (restartPolicy Always): the pod-resources API lists those.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// requestsResource says whether any container of the pod requests resource.
func requestsResource(pod *corev1.Pod, resource string) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if containerRequest(&cs[i], resource) > 0 {
				return true
			}
		}
	}
	return false
}

// annotatedGPUs returns the GPUs of the pod's gpufleet.io/gpu-indices
// annotation. ok is false when the pod has none.
func (inv *inventory) annotatedGPUs(pod *corev1.Pod) (gpus []*GPU, ok bool, err error) {
	v, ok := pod.Annotations[names.AnnotationGPUIndices]
	if !ok {
		return nil, false, nil
	}
	idx, err := names.ParseGPUIndices(v, len(inv.gpus))
	if err != nil {
		return nil, true, err
	}
	for _, i := range idx {
		g, found := inv.byIndex[i]
		if !found {
			return nil, true, fmt.Errorf("annotation %s=%q names GPU %d, which this node does not have", names.AnnotationGPUIndices, v, i)
		}
		gpus = append(gpus, g)
	}
	return gpus, true, nil
}

func podKey(namespace, name string) string { return namespace + "/" + name }
