// Package deviceplugin is gpu-agent's kubelet device plugin (API v1beta1):
// it advertises gpufleet.io/gpu-milli (1000 device IDs per GPU) and,
// optionally, nvidia.com/gpu (one ID per GPU), and makes the kubelet give
// each container exactly the GPUs the scheduler wrote to the pod's
// gpufleet.io/gpu-indices annotation.
//
// The kubelet tells a device plugin nothing about the pod it is admitting.
// This plugin finds it without guessing and without a node-wide lock: the
// kubelet admits one pod at a time, and adds the pod to its active pods
// before it allocates devices, so while GetPreferredAllocation runs the
// pod-resources API lists exactly one active pod with a GPU container that
// has no devices yet: the one being admitted (pods later in the same batch
// are not added before it is done). Its annotation names the GPUs, and the
// preferred device IDs are taken from them. Allocate needs no pod at all:
// device IDs say which GPU they belong to. PreStartContainer checks the
// outcome through pod-resources: the container whose devices the kubelet
// passes must hold the annotated GPUs; a mismatch is a Warning Event on the
// pod, a counter on /metrics and, by default, a refusal to start.
//
// Whole GPUs and shares come from one node: a GPU given out whole is never
// also given out in shares, and the reverse; Allocate refuses either.
package deviceplugin
