// Package config holds the internal types of gpufleet's scheduler plugin
// arguments. They are registered in kube-scheduler's own config group
// (kubescheduler.config.k8s.io), so a KubeSchedulerConfiguration's
// pluginConfig decodes, defaults and converts them like in-tree plugin args.
// The versioned form is in apis/config/v1.
package config
