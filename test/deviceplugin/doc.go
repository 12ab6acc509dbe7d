// Package deviceplugin tests gpu-agent's device plugin on the local real
// node (internal/deviceplugintest): what each container gets, under
// concurrent admission, restarts and GPU faults.
package deviceplugin
