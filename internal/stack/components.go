package stack

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/schedconfig"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// child is a gpufleet program the stack runs beside the control plane.
type child struct {
	name string
	proc *localcluster.Process
}

// startChild runs a gpufleet binary as a child of this process (it dies
// with it, even on SIGKILL); Stop ends it.
func (s *Stack) startChild(name string, args []string) (*localcluster.Process, error) {
	p, err := localcluster.StartProcess(name, s.Binaries[name], args, nil, filepath.Join(s.dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.children = append(s.children, &child{name: name, proc: p})
	s.mu.Unlock()
	return p, nil
}

// startScheduler runs bin/scheduler-plugin with gpufleet's recommended
// profile as the second scheduler gpufleet-scheduler (leader election off),
// and waits for its /healthz.
func (s *Stack) startScheduler(ctx context.Context, strategy string) error {
	cfg, err := schedconfig.WriteConfig(s.dir, s.Cluster.KubeconfigPath, false, schedconfig.GPUPackProfile(schedconfig.SchedulerName, strategy))
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := s.startChild(binaries.SchedulerPlugin, []string{
		"--config=" + cfg,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--authentication-kubeconfig=" + s.Cluster.KubeconfigPath,
		"--authorization-kubeconfig=" + s.Cluster.KubeconfigPath,
	})
	if err != nil {
		return err
	}
	return waitHTTPSOK(ctx, p, binaries.SchedulerPlugin, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
}

// startAdapter runs bin/metrics-adapter (embedded source: it scrapes pods
// and gpu-agents every second), registers it as the custom and external
// metrics APIs and waits until they are Available.
func (s *Stack) startAdapter(ctx context.Context, extra []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := s.startChild(binaries.MetricsAdapter, append(adaptertest.Flags(s.Cluster, port, s.dir), extra...))
	if err != nil {
		return err
	}
	if err := waitHTTPSOK(ctx, p, binaries.MetricsAdapter, "https://127.0.0.1:"+strconv.Itoa(port)+"/readyz"); err != nil {
		return err
	}
	s.adapterURL = "https://127.0.0.1:" + strconv.Itoa(port)
	return adaptertest.Register(ctx, s.Cluster.Config, port, 60*time.Second)
}

// waitHTTPSOK polls url (a self-signed loopback server) until it answers
// 200, failing early if the process exits first.
func waitHTTPSOK(ctx context.Context, p *localcluster.Process, name, url string) error {
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe of a self-signed local server
	defer insecure.CloseIdleConnections()
	if err := p.WaitHTTPOK(ctx, insecure, url, 60*time.Second); err != nil {
		return fmt.Errorf("%s not ready at %s: %w\n%s", name, url, err, p.LogTail(40))
	}
	return nil
}

func freePort() (int, error) {
	addr, err := testutil.FreeAddr()
	if err != nil {
		return 0, err
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}
