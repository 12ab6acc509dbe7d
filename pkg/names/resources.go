package names

import corev1 "k8s.io/api/core/v1"

// GPUResources returns the GPU extended resources (nvidia.com/gpu,
// gpufleet.io/gpu-milli) of a resource list, or nil without any.
func GPUResources(rl corev1.ResourceList) corev1.ResourceList {
	var out corev1.ResourceList
	for _, name := range []corev1.ResourceName{ResourceGPU, ResourceGPUMilli} {
		if q, ok := rl[name]; ok {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[name] = q
		}
	}
	return out
}
