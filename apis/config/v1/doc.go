// Package v1 is the versioned form of gpufleet's scheduler plugin arguments
// (kubescheduler.config.k8s.io/v1, kind GPUPackArgs): what users write in a
// KubeSchedulerConfiguration's pluginConfig. Unset fields get defaults.
package v1
