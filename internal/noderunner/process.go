package noderunner

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Command is what a Process runs for one pod.
type Command struct {
	// Path is the program; Args its arguments (without the program name).
	Path string
	Args []string
	// Env entries are added to the runner's environment.
	Env []string
	// ReadyURL, when set, is polled with GET until it answers 200: only then
	// does Start return, so the pod is reported Ready once it serves.
	ReadyURL string
}

// Process is a Workload that runs a real program for each pod, as a
// container runtime would: Command says what to run for a pod on its IP.
// Start returns once the program answers its ReadyURL. Stopping sends
// SIGTERM and waits for the program to exit (a server drains meanwhile),
// killing it after the pod's termination grace period (default 30 s).
// Programs die with the process that started them, even on SIGKILL
// (localcluster.StartProcess). Each program's output goes to its own log
// in LogDir; LogTails prints them.
type Process struct {
	// Command returns what to run for pod on ip; an error fails the start
	// (the runner retries).
	Command func(pod *corev1.Pod, ip string) (Command, error)
	// LogDir holds one log per started program. Required.
	LogDir string
	// ReadyTimeout bounds how long Start waits for ReadyURL. Default 60 s.
	ReadyTimeout time.Duration

	mu   sync.Mutex
	logs []string
}

// Start implements Workload.
func (p *Process) Start(ctx context.Context, pod *corev1.Pod, ip string) (func(), error) {
	c, err := p.Command(pod, ip)
	if err != nil {
		return nil, err
	}
	name := pod.Namespace + "_" + pod.Name
	logPath := filepath.Join(p.LogDir, fmt.Sprintf("%s_%s.log", name, shortUID(string(pod.UID))))
	proc, err := localcluster.StartProcess(name, c.Path, c.Args, c.Env, logPath)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if !slices.Contains(p.logs, logPath) { // a retried start appends to its log
		p.logs = append(p.logs, logPath)
	}
	p.mu.Unlock()
	grace := 30 * time.Second
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	stop := func() { _ = proc.Stop(grace) }
	if c.ReadyURL == "" {
		return stop, nil
	}
	if err := waitServing(ctx, proc, c.ReadyURL, p.readyTimeout()); err != nil {
		_ = proc.Kill()
		return nil, fmt.Errorf("%s for pod %s on %s: %w\n%s", filepath.Base(c.Path), name, ip, err, proc.LogTail(20))
	}
	return stop, nil
}

func (p *Process) readyTimeout() time.Duration {
	if p.ReadyTimeout > 0 {
		return p.ReadyTimeout
	}
	return time.Minute
}

// waitServing polls url until it answers 200, failing early if the program
// exits (e.g. its address was taken).
func waitServing(ctx context.Context, proc *localcluster.Process, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	if err := proc.WaitHTTPOK(ctx, client, url, timeout); err != nil {
		return fmt.Errorf("not ready at %s: %w", url, err)
	}
	return nil
}

// LogTails returns the last n lines of every program's log, each under a
// header naming its file: for a test to print when it fails.
func (p *Process) LogTails(n int) string {
	p.mu.Lock()
	logs := append([]string(nil), p.logs...)
	p.mu.Unlock()
	var b strings.Builder
	for _, path := range logs {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", path, localcluster.TailFile(path, n))
	}
	return b.String()
}

func shortUID(uid string) string {
	if len(uid) > 8 {
		return uid[:8]
	}
	return uid
}
