package localcluster

import (
	"context"
	"net/http"
	"syscall"
	"time"
)

// Process is a child process started like the control plane's own: it dies
// with the process that started it (even on SIGKILL) and runs in its own
// process group. Tests, benchmarks and the demo start the gpufleet
// components this way.
type Process struct{ p *process }

// StartProcess runs bin with args and the extra env entries, output
// appended to logPath.
func StartProcess(name, bin string, args, env []string, logPath string) (*Process, error) {
	p, err := startProcess(name, bin, args, logPath, env...)
	if err != nil {
		return nil, err
	}
	return &Process{p}, nil
}

// PID is the child's process id.
func (p *Process) PID() int { return p.p.pid() }

// Stop sends SIGTERM, waits up to grace, then SIGKILLs the process group;
// it returns once the child is reaped.
func (p *Process) Stop(grace time.Duration) error { return p.p.stop(grace) }

// Kill SIGKILLs the child (as a crash would) and waits until it is reaped.
func (p *Process) Kill() error {
	_ = syscall.Kill(-p.p.pid(), syscall.SIGKILL)
	return p.p.stop(0)
}

// Exited reports whether the child has exited, and how.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// LogTail returns the last n lines of the child's log.
func (p *Process) LogTail(n int) string { return p.p.logTail(n) }

// WaitHTTPOK polls url with client until it answers 200, failing early if
// the child exits first (e.g. its address was taken), or after timeout.
func (p *Process) WaitHTTPOK(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	return waitReady(ctx, p.p, timeout, func(ctx context.Context) error { return httpOK(ctx, client, url, "") })
}
