package localcluster

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// The real node's guard: a child of the process that started the node,
// re-executing that process' own binary (a test binary, gpufleet), that
// does nothing until its parent dies. It then removes what the node's
// kubelet and containerd could not take with them: containers, shims,
// mounts, cgroups, the bridge. The kubelet and containerd themselves die
// with their parent like every other child; containers do not, as
// containerd's shims outlive it by design.
const guardEnv = "GPUFLEET_REAL_NODE_GUARD"

func init() {
	if os.Getenv(guardEnv) != "1" {
		return
	}
	os.Exit(runGuard())
}

// runGuard waits for SIGTERM (the parent-death signal) and sweeps. SIGKILL
// ends it without sweeping: that is how a node that stopped cleanly
// dismisses it.
func runGuard() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("guarding the real node")
	<-sig
	unlock, err := lockFile(filepath.Join(realNodeStateDir, "lock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "real node guard:", err)
		return 1
	}
	defer unlock()
	if err := SweepRealNode(); err != nil {
		fmt.Fprintln(os.Stderr, "real node guard:", err)
		return 1
	}
	fmt.Println("swept the real node after its owner died")
	return 0
}

// startGuard starts the guard for the node whose state is recorded.
func startGuard(logDir string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcessSignal("real-node-guard", self, nil, filepath.Join(logDir, "guard.log"), syscall.SIGTERM, guardEnv+"=1")
}
