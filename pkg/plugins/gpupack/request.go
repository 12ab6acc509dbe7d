package gpupack

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// MilliPerGPU is one whole GPU in the ledger's unit.
const MilliPerGPU = 1000

// Request is what a pod asks of a node's GPUs.
type Request struct {
	// GPUs is the number of whole GPUs (nvidia.com/gpu).
	GPUs int
	// Milli is a share of one GPU (gpufleet.io/gpu-milli), used when GPUs is 0.
	Milli int64
	// CPU is the pod's CPU request in millicores; strategies that weigh
	// fragmentation need it (a GPU whose node has no CPU left is stranded).
	CPU int64
	// Models are the GPU models the pod accepts; empty accepts any.
	Models []string
}

// Count is the number of GPUs the request occupies (0 for CPU-only pods).
func (r Request) Count() int {
	if r.GPUs > 0 {
		return r.GPUs
	}
	if r.Milli > 0 {
		return 1
	}
	return 0
}

// PerGPU is the milli-GPU taken from each occupied GPU.
func (r Request) PerGPU() int64 {
	if r.GPUs > 0 {
		return MilliPerGPU
	}
	return r.Milli
}

// TotalMilli is the milli-GPU the request occupies in all.
func (r Request) TotalMilli() int64 { return int64(r.Count()) * r.PerGPU() }

// WantsGPU says whether the request occupies any GPU.
func (r Request) WantsGPU() bool { return r.Count() > 0 }

// AllowsModel says whether a node of the given model (ok false: unknown) can
// serve the request.
func (r Request) AllowsModel(model string, ok bool) bool {
	if len(r.Models) == 0 {
		return true
	}
	return ok && slices.Contains(r.Models, model)
}

// String is the request as reasons print it, e.g. "2 GPUs" or "470 milli-GPU".
func (r Request) String() string {
	switch {
	case r.GPUs == 1:
		return "1 GPU"
	case r.GPUs > 1:
		return fmt.Sprintf("%d GPUs", r.GPUs)
	case r.Milli > 0:
		return fmt.Sprintf("%d milli-GPU", r.Milli)
	}
	return "no GPU"
}

// RequestFromPod reads a pod's GPU request: its effective nvidia.com/gpu and
// gpufleet.io/gpu-milli requests (init containers, sidecars and overhead
// counted as the kubelet does) and its gpufleet.io/gpu-model annotation. The
// error names the offending value and says what to write instead.
func RequestFromPod(pod *corev1.Pod) (Request, error) {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	var r Request
	gpus := reqs[names.ResourceGPU]
	milli := reqs[names.ResourceGPUMilli]
	cpu := reqs[corev1.ResourceCPU]
	r.CPU = cpu.MilliValue()
	if n := gpus.Value(); n > 0 {
		if n > 1<<16 {
			return Request{}, fmt.Errorf("%s request %d is not a plausible GPU count", names.ResourceGPU, n)
		}
		r.GPUs = int(n)
	}
	if m := milli.Value(); m > 0 {
		switch {
		case r.GPUs > 0:
			return Request{}, fmt.Errorf("pod requests both %s (%d) and %s (%d): request whole GPUs or a share of one GPU, not both", names.ResourceGPU, r.GPUs, names.ResourceGPUMilli, m)
		case m > MilliPerGPU:
			return Request{}, fmt.Errorf("%s request %d is more than one GPU (%d): request whole GPUs with %s instead", names.ResourceGPUMilli, m, MilliPerGPU, names.ResourceGPU)
		}
		r.Milli = m
	}
	if v, ok := pod.Annotations[names.AnnotationGPUModel]; ok {
		models, err := ParseModels(v)
		if err != nil {
			return Request{}, err
		}
		if !r.WantsGPU() {
			return Request{}, fmt.Errorf("annotation %s=%q is set but the pod requests no GPU (%s or %s): remove the annotation or request a GPU", names.AnnotationGPUModel, v, names.ResourceGPU, names.ResourceGPUMilli)
		}
		r.Models = models
	}
	return r, nil
}

// ParseModels reads a gpufleet.io/gpu-model value: model names separated
// by '|', e.g. "V100M16|V100M32".
func ParseModels(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("annotation %s is empty: list the allowed GPU models separated by '|', e.g. V100M16|V100M32, or remove it", names.AnnotationGPUModel)
	}
	parts := strings.Split(v, "|")
	models := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("annotation %s=%q has an empty model name: separate models by a single '|', e.g. V100M16|V100M32", names.AnnotationGPUModel, v)
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return nil, fmt.Errorf("annotation %s=%q: model name %q has the character %q; names are letters, digits, '-', '_' and '.', e.g. V100M16", names.AnnotationGPUModel, v, p, c)
			}
		}
		if !slices.Contains(models, p) {
			models = append(models, p)
		}
	}
	return models, nil
}

// ParseIndices reads a gpufleet.io/gpu-indices value ("0,3") for a node with
// gpuCount GPUs (names.ParseGPUIndices: the device plugin reads it too).
func ParseIndices(v string, gpuCount int) ([]int, error) { return names.ParseGPUIndices(v, gpuCount) }

// FormatIndices writes GPU indices as gpufleet.io/gpu-indices holds them.
func FormatIndices(gpus []int) string { return names.FormatGPUIndices(gpus) }
