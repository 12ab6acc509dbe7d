// Package names holds the resource, label and annotation names of
// DESIGN.md that several components share (a contract: change them
// everywhere at once).
package names

import corev1 "k8s.io/api/core/v1"

// Extended resources.
const (
	// ResourceGPU is whole GPUs, as the NVIDIA device plugin advertises them.
	ResourceGPU corev1.ResourceName = "nvidia.com/gpu"
	// ResourceGPUMilli is a share of one GPU: 1000 is a whole GPU.
	ResourceGPUMilli corev1.ResourceName = "gpufleet.io/gpu-milli"
)

// Node labels the gpu-agent writes.
const (
	LabelGPUProduct       = "gpufleet.io/gpu.product"
	LabelGPUCount         = "gpufleet.io/gpu.count"
	LabelGPUMemoryMiB     = "gpufleet.io/gpu.memory-mib"
	LabelGPUArch          = "gpufleet.io/gpu.arch"
	LabelGPUDriverVersion = "gpufleet.io/gpu.driver-version"
	LabelGPUCUDAVersion   = "gpufleet.io/gpu.cuda-version"
	// LabelSimulated marks Node objects that no kubelet stands behind.
	LabelSimulated = "gpufleet.io/simulated"
)

// AnnotationGPUTopology is the node's NVLink topology, written by the
// agent: comma-separated "i-j:n" for each pair of GPU indices i < j joined
// by n NVLinks, e.g. "0-1:1,0-3:2". Absent without NVLinks.
const AnnotationGPUTopology = "gpufleet.io/gpu.topology"

// AnnotationGPUUnhealthy lists the node's GPUs that failed (XID errors, no
// answer to NVML), written by the agent while they are unhealthy: GPU
// indices as gpufleet.io/gpu-indices holds them, e.g. "3". The scheduler
// places nothing new on them; absent when every GPU is healthy.
const AnnotationGPUUnhealthy = "gpufleet.io/gpu.unhealthy"

// Labels NVIDIA GPU feature discovery writes, and the `accelerator`
// convention; the scheduler reads them too.
const (
	LabelNVIDIAProduct = "nvidia.com/gpu.product"
	LabelNVIDIACount   = "nvidia.com/gpu.count"
	LabelNVIDIAMemory  = "nvidia.com/gpu.memory"
	LabelNVIDIAFamily  = "nvidia.com/gpu.family"
	LabelAccelerator   = "accelerator"
)

// Pod annotations.
const (
	AnnotationGPUModel   = "gpufleet.io/gpu-model"
	AnnotationGPUIndices = "gpufleet.io/gpu-indices"
	AnnotationScrape     = "gpufleet.io/scrape"
	AnnotationScrapePort = "gpufleet.io/metrics-port"
	AnnotationScrapePath = "gpufleet.io/metrics-path"
)
