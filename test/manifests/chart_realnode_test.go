package manifests_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// TestIntegrationHelmInstallOnRealNode installs the chart as a cluster
// admin would (`helm install gpufleet charts/gpufleet -n gpufleet-system
// --create-namespace -f charts/gpufleet/ci/local-node-values.yaml`, with
// the helm CLI built from hack/helm) onto a real kubelet running gpufleet's own
// images, waits for the components to work, upgrades the release, and
// uninstalls it: nothing of gpufleet's is left, above all no APIService
// pointing at a Service that is gone.
func TestIntegrationHelmInstallOnRealNode(t *testing.T) {
	var images []string
	for _, b := range []string{"gpu-agent", "metrics-adapter", "scheduler-plugin"} {
		images = append(images, clustertest.Image(t, b))
	}
	c, client, n := clustertest.StartRealNode(t, localcluster.RealNodeOptions{
		Images: images,
		Labels: map[string]string{"nvidia.com/gpu.present": "true"},
	}, localcluster.ControllerManagerOptions{})
	e := newEnv(t)
	const ns = "gpufleet-system"

	helm := newHelm(t, c.KubeconfigPath)
	values := filepath.Join(chartDir(e), "ci", "local-node-values.yaml")
	installed := time.Now()
	helm.run("install", releaseName, chartDir(e), "-n", ns, "--create-namespace", "-f", values)
	t.Logf("helm install: %.1f s", time.Since(installed).Seconds())
	waitFor(t, client, n, componentChecks(t, c, client, n), installed)

	// helm upgrade with a changed value: the scheduler rolls (its
	// configuration's checksum is on its pods) and works again.
	upgraded := time.Now()
	helm.run("upgrade", releaseName, chartDir(e), "-n", ns, "-f", values, "--set", "scheduler.strategy=FGD")
	waitFor(t, client, n, []check{{"scheduler rolled to the new configuration", func(ctx context.Context) error {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "gpufleet-scheduler-config", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !strings.Contains(cm.Data["scheduler-config.yaml"], "strategy: FGD") {
			return fmt.Errorf("ConfigMap gpufleet-scheduler-config is not upgraded:\n%s", cm.Data["scheduler-config.yaml"])
		}
		dep, err := client.AppsV1().Deployments(ns).Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := dep.Spec.Template.Annotations["checksum/config"]
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=scheduler-plugin"})
		if err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Annotations["checksum/config"] != want {
				return fmt.Errorf("pod %s runs the old configuration", p.Name)
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == "Ready" && cond.Status == "True" {
					ready++
				}
			}
		}
		if ready != 2 {
			return fmt.Errorf("%d scheduler pods ready on the new configuration, want 2", ready)
		}
		return nil
	}}}, upgraded)

	// helm uninstall: every object of the release goes.
	helm.run("uninstall", releaseName, "-n", ns)
	agg, err := aggregator.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var left []string
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		left = nil
		for _, name := range []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"} {
			if _, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, "APIService "+name)
			}
		}
		if _, err := client.RbacV1().ClusterRoles().Get(ctx, "gpufleet:gpu-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "ClusterRole gpufleet:gpu-agent")
		}
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=gpufleet"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			left = append(left, "Pod "+p.Name)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Fatalf("after helm uninstall, still there: %v (%v)", left, err)
	}
}

// helmCLI runs bin/helm against one cluster, with its own cache and
// configuration directories.
type helmCLI struct {
	t          *testing.T
	bin        string
	kubeconfig string
	env        []string
}

func newHelm(t *testing.T, kubeconfig string) helmCLI {
	t.Helper()
	home := t.TempDir()
	env := append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	return helmCLI{t: t, bin: tool(t, localcluster.Helm), kubeconfig: kubeconfig, env: env}
}

// run runs helm with args, failing the test with its output on an error.
func (h helmCLI) run(args ...string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, append([]string{"--kubeconfig", h.kubeconfig}, args...)...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	h.t.Logf("helm %s:\n%s", strings.Join(args, " "), out)
}
