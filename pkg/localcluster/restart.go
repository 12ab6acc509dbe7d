package localcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// launchSpec is how a component was started: its arguments (with its
// ports) and its readiness check.
type launchSpec struct {
	args  []string
	ports []int
	ready func(context.Context, []int) error
}

// CrashRestart SIGKILLs etcd (Etcd) or kube-apiserver (KubeAPIServer), as
// a crash would, and starts it again with the same arguments, ports and
// data, returning once it is ready: the fault of a control-plane process
// that its supervisor restarts. Clients keep their addresses. It returns how
// long the component was down (from the kill until ready).
func (c *Cluster) CrashRestart(ctx context.Context, name string) (time.Duration, error) {
	c.mu.Lock()
	spec, ok := c.launched[name]
	var slot **process
	switch name {
	case Etcd:
		slot = &c.etcd
	case KubeAPIServer:
		slot = &c.api
	}
	stopped := c.stopped
	c.mu.Unlock()
	switch {
	case slot == nil:
		return 0, fmt.Errorf("CrashRestart: %s is not etcd or kube-apiserver", name)
	case stopped:
		return 0, fmt.Errorf("CrashRestart: the cluster is stopped")
	case !ok || *slot == nil:
		return 0, fmt.Errorf("CrashRestart: %s was not started", name)
	}
	old := *slot
	start := time.Now()
	_ = syscall.Kill(-old.pid(), syscall.SIGKILL)
	if err := old.stop(0); err != nil {
		return 0, fmt.Errorf("CrashRestart: killing %s: %w", name, err)
	}
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	p, err := startProcess(name, c.bins[name], spec.args, logPath)
	if err != nil {
		return 0, fmt.Errorf("CrashRestart: %w", err)
	}
	c.mu.Lock()
	*slot = p
	c.pids = append(c.pids, p.pid())
	c.mu.Unlock()
	if err := waitReady(ctx, p, c.startTimeout, func(ctx context.Context) error { return spec.ready(ctx, spec.ports) }); err != nil {
		return 0, fmt.Errorf("CrashRestart: %s did not become ready again: %w\nlast lines of %s:\n%s", name, err, logPath, p.logTail(40))
	}
	return time.Since(start), nil
}
