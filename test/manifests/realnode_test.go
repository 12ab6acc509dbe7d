package manifests_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// TestIntegrationLocalOverlayOnRealNode installs gpufleet as a cluster
// admin would, `kubectl apply -k manifests/overlays/local` and
// `local-examples`, onto a real
// kubelet running gpufleet's own images, and waits for what the admin
// would look for: the agent DaemonSet running and labelling its node, the
// adapter serving its APIServices (Available through kube-apiserver and
// the Service's ClusterIP), the scheduler holding its Lease, and the
// example model placed by the scheduler (GPU indices annotated), Ready
// behind its probes, with its HPA reading requests_per_second.
func TestIntegrationLocalOverlayOnRealNode(t *testing.T) {
	var images []string
	for _, b := range []string{"gpu-agent", "metrics-adapter", "scheduler-plugin", "inference-server"} {
		images = append(images, clustertest.Image(t, b))
	}
	c, client, n := clustertest.StartRealNode(t, localcluster.RealNodeOptions{
		Images: images,
		// What NVIDIA's GPU feature discovery labels a GPU node with: the
		// agent's DaemonSet selects on it.
		Labels: map[string]string{"nvidia.com/gpu.present": "true"},
	}, localcluster.ControllerManagerOptions{ExtraArgs: []string{"--horizontal-pod-autoscaler-sync-period=2s"}})
	e := newEnv(t)
	applied := time.Now()
	for _, k := range []string{"local", "local-examples"} {
		if _, _, err := e.run(nil, "--kubeconfig", c.KubeconfigPath, "apply", "-k", filepath.Join(e.root, "manifests", "overlays", k)); err != nil {
			t.Fatal(err)
		}
	}
	checks := append(componentChecks(t, c, client, n), []check{
		{"example models placed by gpufleet-scheduler and Ready", func(ctx context.Context) error {
			for _, d := range []string{"property-value", "property-value-shared"} {
				if err := clustertest.DeploymentReady(ctx, client, "ml-production", d); err != nil {
					return err
				}
			}
			pods, err := client.CoreV1().Pods("ml-production").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				if p.Spec.NodeName != n.Name || p.Annotations[names.AnnotationGPUIndices] == "" {
					return fmt.Errorf("pod %s on %q with GPU indices %q", p.Name, p.Spec.NodeName, p.Annotations[names.AnnotationGPUIndices])
				}
				if _, ok := localcluster.PodIPOnBridge(&p); !ok {
					return fmt.Errorf("pod %s has address %q, not on the node's bridge", p.Name, p.Status.PodIP)
				}
			}
			return nil
		}},
		{"the HPA reads requests_per_second", func(ctx context.Context) error {
			hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers("ml-production").Get(ctx, "property-value", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, m := range hpa.Status.CurrentMetrics {
				if m.Pods != nil && m.Pods.Metric.Name == "requests_per_second" {
					return nil
				}
			}
			raw, err := client.CoreV1().RESTClient().Get().AbsPath("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml-production/pods/*/requests_per_second").DoRaw(ctx)
			return fmt.Errorf("HPA conditions %v; the custom metrics API answers (err %v): %.500s\nadapter logs:\n%s", hpa.Status.Conditions, err, raw, podLogs(client, "gpufleet-system", "app.kubernetes.io/name=metrics-adapter", 15))
		}},
	}...)
	waitFor(t, client, n, checks, applied)
}

// check is one thing an admin looks for after installing.
type check struct {
	what string
	ok   func(context.Context) error
}

// componentChecks are what an admin looks for once gpufleet's components
// are installed in gpufleet-system on the real node n: the agent
// DaemonSet running and labelling its node, the adapter serving its
// APIServices with verified TLS, the scheduler holding its Lease.
func componentChecks(t *testing.T, c *localcluster.Cluster, client kubernetes.Interface, n *localcluster.RealNode) []check {
	t.Helper()
	agg, err := aggregator.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return []check{
		{"gpu-agent DaemonSet ready and the node labelled", func(ctx context.Context) error {
			ds, err := client.AppsV1().DaemonSets("gpufleet-system").Get(ctx, "gpufleet-gpu-agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ds.Status.NumberReady != 1 {
				return fmt.Errorf("%d of %d agents ready", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
			}
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := node.Labels[names.LabelGPUProduct]; got != "Tesla-V100-SXM2-16GB" {
				return fmt.Errorf("node label %s=%q", names.LabelGPUProduct, got)
			}
			return nil
		}},
		{"metrics-adapter ready and its APIServices Available", func(ctx context.Context) error {
			if err := clustertest.DeploymentReady(ctx, client, "gpufleet-system", "gpufleet-metrics-adapter"); err != nil {
				return err
			}
			for _, name := range []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"} {
				as, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				available := false
				for _, cond := range as.Status.Conditions {
					if cond.Type == "Available" {
						available = cond.Status == "True"
						if !available {
							return fmt.Errorf("APIService %s not Available: %s: %s", name, cond.Reason, cond.Message)
						}
					}
				}
				if !available {
					return fmt.Errorf("APIService %s has no Available condition", name)
				}
				// Available with kube-apiserver verifying the adapter
				// against the CA the adapter injected from its Secret.
				if as.Spec.InsecureSkipTLSVerify || len(as.Spec.CABundle) == 0 {
					return fmt.Errorf("APIService %s: insecureSkipTLSVerify=%t, caBundle of %d bytes: want verification with the adapter's CA", name, as.Spec.InsecureSkipTLSVerify, len(as.Spec.CABundle))
				}
			}
			sec, err := client.CoreV1().Secrets("gpufleet-system").Get(ctx, "gpufleet-metrics-adapter-serving-cert", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("the adapter's serving-certificate Secret: %w", err)
			}
			if len(sec.Data["ca.crt"]) == 0 || len(sec.Data["tls.crt"]) == 0 {
				return fmt.Errorf("Secret gpufleet-system/gpufleet-metrics-adapter-serving-cert has no ca.crt or tls.crt")
			}
			return nil
		}},
		{"scheduler ready and holding its Lease", func(ctx context.Context) error {
			if err := clustertest.DeploymentReady(ctx, client, "gpufleet-system", "gpufleet-scheduler"); err != nil {
				return err
			}
			l, err := client.CoordinationV1().Leases("gpufleet-system").Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if l.Spec.HolderIdentity == nil || !strings.HasPrefix(*l.Spec.HolderIdentity, "gpufleet-scheduler-") {
				return fmt.Errorf("lease holder %v", l.Spec.HolderIdentity)
			}
			return nil
		}},
	}
}

// waitFor polls each check in turn, 3 min each, failing with the pods'
// state when one does not pass.
func waitFor(t *testing.T, client kubernetes.Interface, n *localcluster.RealNode, checks []check, since time.Time) {
	t.Helper()
	for _, check := range checks {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		var last error
		for {
			if err := n.Err(); err != nil {
				cancel()
				t.Fatal(err)
			}
			if last = check.ok(ctx); last == nil {
				t.Logf("%s: %.1f s after apply", check.what, time.Since(since).Seconds())
				break
			}
			select {
			case <-ctx.Done():
				cancel()
				t.Fatalf("%s: not after 3 min: %v\n%s", check.what, last, podSummary(client))
			case <-time.After(500 * time.Millisecond):
			}
		}
		cancel()
	}
}

// podSummary says where every pod is and why it is not ready, with the
// events of the unready ones.
func podSummary(client kubernetes.Interface) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s/%s on %q: %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " [%s ready=%v restarts=%d %v]", cs.Name, cs.Ready, cs.RestartCount, cs.State)
		}
		b.WriteString("\n")
		evs, err := client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
		if err == nil {
			for _, e := range evs.Items {
				if e.Type != corev1.EventTypeNormal {
					fmt.Fprintf(&b, "  %s %s: %.300s\n", e.Type, e.Reason, e.Message)
				}
			}
		}
	}
	return b.String()
}

// podLogs returns the last lines of the logs of the pods selector matches.
func podLogs(client kubernetes.Interface, ns, selector string, lines int64) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		logs, err := client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		fmt.Fprintf(&b, "==> %s (err %v)\n%s\n", p.Name, err, logs)
	}
	return b.String()
}
