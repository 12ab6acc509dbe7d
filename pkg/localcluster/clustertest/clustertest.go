// Package clustertest starts a local control plane for one test and ends it
// with the test. Tests that use it are integration tests: they are skipped
// under `go test -short` (make test-unit).
package clustertest

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Start starts a control plane for t, registers its Stop as a cleanup, and
// prints the components' log tails if the test failed. It skips the test in
// -short mode.
func Start(t testing.TB, opts localcluster.Options) (*localcluster.Cluster, kubernetes.Interface) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts etcd and kube-apiserver; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting local control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs:\n%s", c.Logs(30))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping local control plane: %v", err)
		}
	})
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("client for local control plane: %v", err)
	}
	return c, client
}

// StartControllerManager starts kube-controller-manager on c, failing t if it
// does not become healthy.
func StartControllerManager(t testing.TB, c *localcluster.Cluster, opts localcluster.ControllerManagerOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.StartControllerManager(ctx, opts); err != nil {
		t.Fatalf("starting kube-controller-manager: %v", err)
	}
}
