// Package clustertest starts a local control plane for one test and ends it
// with the test. Tests that use it are integration tests: they are skipped
// under `go test -short` (make test-unit).
package clustertest

import (
	"context"
	"os"
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

// RequireRealNodeEnv, set to 1 (make test does), turns a real-node test's
// skip on a machine that cannot run one into a failure, so CI cannot pass
// by skipping.
const RequireRealNodeEnv = "GPUFLEET_REQUIRE_REAL_NODE"

// StartRealNode starts localcluster.StartRealCluster for t: a control plane
// reachable from pods, its controllers, the stock kube-scheduler and a real
// node with opts. It skips t where the machine cannot run a real node or
// the images are not built, naming what is missing (fails instead under
// GPUFLEET_REQUIRE_REAL_NODE=1), and stops everything with the test,
// printing the logs if it failed.
func StartRealNode(t testing.TB, opts localcluster.RealNodeOptions, kcm localcluster.ControllerManagerOptions) (*localcluster.Cluster, kubernetes.Interface, *localcluster.RealNode) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a control plane and a real node; run without -short")
	}
	if err := localcluster.RealNodeSupported(); err != nil {
		RealNodeUnavailable(t, err)
	}
	if _, err := localcluster.ImagePath("pause"); err != nil {
		RealNodeUnavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, n, err := localcluster.StartRealCluster(ctx, localcluster.Options{}, kcm, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs:\n%s", c.Logs(30))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping local control plane: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("real node logs:\n%s", n.Logs(40))
		}
		if err := n.Stop(); err != nil {
			t.Errorf("stopping the real node: %v", err)
		}
	})
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c, client, n
}

// Image returns the path of make images' tarball for binary, skipping t
// (failing under GPUFLEET_REQUIRE_REAL_NODE=1) when it is not built.
func Image(t testing.TB, binary string) string {
	t.Helper()
	p, err := localcluster.ImagePath(binary)
	if err != nil {
		RealNodeUnavailable(t, err)
	}
	return p
}

// RealNodeUnavailable skips t because of why (the machine cannot run a
// real node, or its images are not built), or fails it under
// GPUFLEET_REQUIRE_REAL_NODE=1.
func RealNodeUnavailable(t testing.TB, why error) {
	t.Helper()
	if os.Getenv(RequireRealNodeEnv) == "1" {
		t.Fatalf("%v (%s=1)", why, RequireRealNodeEnv)
	}
	t.Skip(why)
}
