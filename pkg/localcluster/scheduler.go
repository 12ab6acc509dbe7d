package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// StartScheduler starts the stock kube-scheduler (default-scheduler, its
// default configuration) against the cluster and waits until its /healthz
// answers ok: a real node's system pods (DaemonSets, the gpufleet scheduler
// itself) need it, as on any cluster. Only one runs at a time.
func (c *Cluster) StartScheduler(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.stopped:
		c.mu.Unlock()
		return errors.New("control plane is stopped")
	case c.sched != nil:
		c.mu.Unlock()
		return errors.New("kube-scheduler is already running")
	}
	c.mu.Unlock()
	bins, err := EnsureBinaries(ctx, filepath.Dir(c.bins[KubeAPIServer]), KubeScheduler)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.bins[KubeScheduler] = bins[KubeScheduler]
	c.mu.Unlock()
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health probe of a self-signed server
	defer insecure.CloseIdleConnections()
	p, _, err := c.launch(ctx, KubeScheduler, 1, func(ports []int) []string {
		return []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--profiling=false",
		}
	}, func(ctx context.Context, ports []int) error {
		return httpOK(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0]), "ok")
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		_ = p.stop(5 * time.Second)
		return errors.New("control plane was stopped while kube-scheduler started")
	}
	c.sched = p
	return nil
}
