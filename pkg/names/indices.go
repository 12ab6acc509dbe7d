package names

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ParseGPUIndices reads a gpufleet.io/gpu-indices value ("0,3") for a node with
// gpuCount GPUs: distinct indices in range.
func ParseGPUIndices(v string, gpuCount int) ([]int, error) {
	if v == "" {
		return nil, fmt.Errorf("annotation %s is empty", AnnotationGPUIndices)
	}
	parts := strings.Split(v, ",")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		i, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("annotation %s=%q: %q is not a GPU index", AnnotationGPUIndices, v, p)
		}
		if i < 0 || i >= gpuCount {
			return nil, fmt.Errorf("annotation %s=%q: GPU %d does not exist on a node with %d GPUs", AnnotationGPUIndices, v, i, gpuCount)
		}
		if slices.Contains(out, i) {
			return nil, fmt.Errorf("annotation %s=%q names GPU %d twice", AnnotationGPUIndices, v, i)
		}
		out = append(out, i)
	}
	return out, nil
}

// FormatGPUIndices writes GPU indices as gpufleet.io/gpu-indices holds them.
func FormatGPUIndices(gpus []int) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = strconv.Itoa(g)
	}
	return strings.Join(parts, ",")
}
