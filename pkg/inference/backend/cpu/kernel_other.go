//go:build !amd64 || !gc || purego

package cpu

// simdKernel is nil where there is no assembly kernel: every model runs
// the scalar kernel.
var simdKernel *kernel
