//go:build linux

package promtest

import "syscall"

// sysProcAttr makes Prometheus die with the test binary, even when the test
// binary is killed and never runs its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
