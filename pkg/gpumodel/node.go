package gpumodel

import (
	"strconv"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// FromNodeLabels says which GPU model a node holds, from the labels the
// gpu-agent writes (gpufleet.io/gpu.product), those of NVIDIA GPU feature
// discovery (nvidia.com/gpu.product) or the `accelerator` convention, in that
// order. A product label naming a catalog model's product, or a short model
// name itself (traces use names such as "G2"), gives that name. The
// accelerator label alone can be ambiguous (nvidia-tesla-v100 is V100M16 or
// V100M32): the memory labels decide; when they cannot, ok is false.
// A node without any of these labels gives ok false.
func FromNodeLabels(labels map[string]string) (name string, ok bool) {
	for _, key := range []string{names.LabelGPUProduct, names.LabelNVIDIAProduct} {
		v := labels[key]
		if v == "" {
			continue
		}
		for _, m := range catalog {
			if strings.EqualFold(v, m.LabelProduct()) || v == m.Name {
				return m.Name, true
			}
		}
		return v, true
	}
	acc := labels[names.LabelAccelerator]
	if acc == "" {
		return "", false
	}
	memMiB := int64(-1)
	for _, key := range []string{names.LabelGPUMemoryMiB, names.LabelNVIDIAMemory} {
		if n, err := strconv.ParseInt(labels[key], 10, 64); err == nil {
			memMiB = n
			break
		}
	}
	var found []Model
	for _, m := range catalog {
		if m.Accelerator == acc && (memMiB < 0 || m.MemoryMiB == memMiB) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0].Name, true
}
