package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultControllers are the kube-controller-manager controllers a workload
// test usually needs: Deployments make ReplicaSets make Pods, the HPA scales
// them, the garbage collector removes what their owners left behind, and
// namespaces get their default ServiceAccount.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"horizontal-pod-autoscaler-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"namespace-controller",
	"disruption-controller",
	"statefulset-controller",
	"job-controller",
}

// ControllerManagerOptions configure kube-controller-manager.
type ControllerManagerOptions struct {
	// Controllers to run (kube-controller-manager --controllers names).
	// Empty means DefaultControllers. The node lifecycle controller is a poor
	// choice here: with no kubelet it would taint every node unreachable.
	Controllers []string
	// ExtraArgs are extra flags (`--name=value`), applied after the defaults,
	// e.g. "--horizontal-pod-autoscaler-sync-period=1s".
	ExtraArgs []string
}

// StartControllerManager starts kube-controller-manager against the cluster
// and waits until its /healthz answers ok. Only one runs at a time.
func (c *Cluster) StartControllerManager(ctx context.Context, opts ControllerManagerOptions) error {
	controllers := opts.Controllers
	if len(controllers) == 0 {
		controllers = DefaultControllers
	}
	return c.startManager(ctx, KubeControllerManager, &c.kcm, func(port int) []string {
		args := []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--controllers=" + strings.Join(controllers, ","),
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(c.Dir, "controller-manager-certs"),
			"--service-account-private-key-file=" + c.pki.saKeyFile,
			"--root-ca-file=" + c.pki.caFile,
			"--kube-api-qps=100",
			"--kube-api-burst=200",
			"--profiling=false",
		}
		return append(args, opts.ExtraArgs...)
	})
}

// startManager starts a control-plane component that serves /healthz on
// its secure port (kube-controller-manager, kube-scheduler) into *slot,
// one at a time, and waits until it answers ok.
func (c *Cluster) startManager(ctx context.Context, name string, slot **process, args func(port int) []string) error {
	c.mu.Lock()
	switch {
	case c.stopped:
		c.mu.Unlock()
		return errors.New("control plane is stopped")
	case *slot != nil:
		c.mu.Unlock()
		return fmt.Errorf("%s is already running; stop it first", name)
	}
	c.mu.Unlock()
	// Its self-signed serving certificate is only probed by us, locally.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health probe of a self-signed server
	defer insecure.CloseIdleConnections()
	p, _, err := c.launch(ctx, name, 1, func(ports []int) []string { return args(ports[0]) }, func(ctx context.Context, ports []int) error {
		return httpOK(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0]), "ok")
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped { // Stop ran while we were starting.
		_ = p.stop(5 * time.Second)
		return fmt.Errorf("control plane was stopped while %s started", name)
	}
	*slot = p
	return nil
}

// StopControllerManager stops kube-controller-manager if it runs.
func (c *Cluster) StopControllerManager() error {
	c.mu.Lock()
	p := c.kcm
	c.kcm = nil
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop(15 * time.Second)
}

// RealNodeControllers add to DefaultControllers what pods on a real node
// rely on: the kube-root-ca.crt ConfigMap their service-account token
// volumes mount, EndpointSlices for kube-proxy, and DaemonSets.
var RealNodeControllers = append(append([]string(nil), DefaultControllers...),
	"root-ca-certificate-publisher-controller",
	"endpointslice-controller",
	"endpoints-controller",
	"daemonset-controller",
	"pod-garbage-collector-controller",
)
