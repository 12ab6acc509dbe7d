// Package gpumodel is the catalog of GPU models gpufleet knows by name: the
// short model names used in the gpufleet.io/gpu-model pod annotation and in
// cluster traces (V100M16, T4, ...), and the facts about each that node labels
// carry (NVML product name, memory, architecture).
package gpumodel

import (
	"fmt"
	"sort"
	"strings"
)

// Model describes one GPU model.
type Model struct {
	// Name is the short model name used by gpufleet.io/gpu-model and traces,
	// e.g. "V100M16".
	Name string
	// Product is the name NVML reports, e.g. "Tesla V100-SXM2-16GB".
	Product string
	// MemoryMiB is the device memory in MiB.
	MemoryMiB int64
	// Arch is the architecture family in lower case, e.g. "volta".
	Arch string
	// Accelerator is the value of the conventional `accelerator` node label,
	// e.g. "nvidia-tesla-v100".
	Accelerator string
}

// LabelProduct is Product in the form NVIDIA GPU feature discovery writes into
// the nvidia.com/gpu.product label: spaces become dashes.
func (m Model) LabelProduct() string {
	return strings.ReplaceAll(m.Product, " ", "-")
}

var catalog = map[string]Model{
	"V100M16": {Name: "V100M16", Product: "Tesla V100-SXM2-16GB", MemoryMiB: 16384, Arch: "volta", Accelerator: "nvidia-tesla-v100"},
	"V100M32": {Name: "V100M32", Product: "Tesla V100-SXM2-32GB", MemoryMiB: 32768, Arch: "volta", Accelerator: "nvidia-tesla-v100"},
	"P100":    {Name: "P100", Product: "Tesla P100-PCIE-16GB", MemoryMiB: 16384, Arch: "pascal", Accelerator: "nvidia-tesla-p100"},
	"T4":      {Name: "T4", Product: "Tesla T4", MemoryMiB: 15360, Arch: "turing", Accelerator: "nvidia-tesla-t4"},
	"A10":     {Name: "A10", Product: "NVIDIA A10", MemoryMiB: 23028, Arch: "ampere", Accelerator: "nvidia-a10"},
	"A100":    {Name: "A100", Product: "NVIDIA A100-SXM4-40GB", MemoryMiB: 40960, Arch: "ampere", Accelerator: "nvidia-tesla-a100"},
	"H100":    {Name: "H100", Product: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559, Arch: "hopper", Accelerator: "nvidia-h100-80gb"},
}

// Lookup returns the model with the given short name.
func Lookup(name string) (Model, error) {
	m, ok := catalog[name]
	if !ok {
		return Model{}, fmt.Errorf("unknown GPU model %q: known models are %s", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Names returns the known short model names, sorted.
func Names() []string {
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
