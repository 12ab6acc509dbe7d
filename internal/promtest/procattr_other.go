//go:build !linux

package promtest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a killed test
// binary can leave Prometheus running there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
