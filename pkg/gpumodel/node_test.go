package gpumodel

import "testing"

func TestFromNodeLabels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
		ok     bool
	}{
		{"agent label", map[string]string{"gpufleet.io/gpu.product": "Tesla-V100-SXM2-32GB"}, "V100M32", true},
		{"feature discovery", map[string]string{"nvidia.com/gpu.product": "Tesla-T4"}, "T4", true},
		{"agent label wins", map[string]string{"gpufleet.io/gpu.product": "Tesla-T4", "nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB"}, "T4", true},
		{"short name", map[string]string{"gpufleet.io/gpu.product": "G2"}, "G2", true},
		{"unknown product kept", map[string]string{"nvidia.com/gpu.product": "NVIDIA-L4"}, "NVIDIA-L4", true},
		{"accelerator with memory", map[string]string{"accelerator": "nvidia-tesla-v100", "nvidia.com/gpu.memory": "16384"}, "V100M16", true},
		{"accelerator ambiguous", map[string]string{"accelerator": "nvidia-tesla-v100"}, "", false},
		{"accelerator unique", map[string]string{"accelerator": "nvidia-tesla-t4"}, "T4", true},
		{"no labels", map[string]string{"kubernetes.io/os": "linux"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FromNodeLabels(tc.labels)
			if got != tc.want || ok != tc.ok {
				t.Errorf("FromNodeLabels(%v) = %q, %v; want %q, %v", tc.labels, got, ok, tc.want, tc.ok)
			}
		})
	}
}
