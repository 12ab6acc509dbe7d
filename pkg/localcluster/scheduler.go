package localcluster

import (
	"context"
	"path/filepath"
	"strconv"
)

// StartScheduler starts the stock kube-scheduler (default-scheduler, its
// default configuration) against the cluster and waits until its /healthz
// answers ok: a real node's system pods (DaemonSets, the gpufleet scheduler
// itself) need it, as on any cluster. Only one runs at a time.
func (c *Cluster) StartScheduler(ctx context.Context) error {
	bins, err := EnsureBinaries(ctx, filepath.Dir(c.bins[KubeAPIServer]), KubeScheduler)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.bins[KubeScheduler] = bins[KubeScheduler]
	c.mu.Unlock()
	return c.startManager(ctx, KubeScheduler, &c.sched, func(port int) []string {
		return []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--profiling=false",
		}
	})
}
