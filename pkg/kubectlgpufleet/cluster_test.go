package kubectlgpufleet

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// run runs `kubectl gpufleet ARGS` and returns stdout, stderr and the error.
func run(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd := NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// The plugin against a real API server: the fixture's nodes and pods,
// created there, give the same table as the fixture itself; bad names and
// a cluster without the custom metrics API get clear messages.
func TestIntegrationPluginOnLocalCluster(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	ctx := context.Background()
	for _, n := range fixtureNodes(t) {
		created, err := client.CoreV1().Nodes().Create(ctx, &n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = n.Status
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"ml", "team", "other"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range fixturePods() {
		status := p.Status
		created, err := client.CoreV1().Pods(p.Namespace).Create(ctx, &p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = status
		if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := "--kubeconfig=" + c.KubeconfigPath

	out, _, err := run("nodes", kc, "--no-metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := BuildInventory(fixtureNodes(t), fixturePods())
	var b bytes.Buffer
	if err := PrintNodes(&b, want, OutputTable); err != nil {
		t.Fatal(err)
	}
	if out != b.String() {
		t.Errorf("nodes against the cluster:\n%s\nwant (the fixture):\n%s", out, b.String())
	}
	golden(t, "nodes-cluster.golden", out)

	// No metrics adapter here: the table still comes, with a note.
	out, errOut, err := run("nodes", kc, "v100-a", "-o", "wide")
	if err != nil || !strings.Contains(errOut, "note: no GPU utilization: no custom metrics API") || strings.Count(out, "\nv100-a ") != 4 {
		t.Errorf("nodes v100-a -o wide: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	out, _, err = run("explain", "share-a", "-n", "ml", kc)
	if err != nil || !strings.Contains(out, "GPU 0: 500m of it, 200m free; shared with ml/share-b 300m.") {
		t.Errorf("explain share-a: %v\n%s", err, out)
	}
	out, _, err = run("explain", "wants-900", "--namespace=ml", kc)
	if err != nil || !strings.Contains(out, "Its GPUs are free now on: v100-a (GPU 2 has 1000m free)") {
		t.Errorf("explain wants-900: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes", "nope", "--no-metrics"}, `node "nope": nodes "nope" not found`},
		{[]string{"nodes", "cpu-a", "--no-metrics"}, `node "cpu-a" has no GPUs`},
		{[]string{"nodes", "-o", "xml"}, `--output="xml"`},
		{[]string{"explain", "nope", "-n", "ml"}, "pod ml/nope not found"},
		{[]string{"explain"}, "accepts 1 arg"},
		{[]string{"top", "pods", "-n", "ml"}, "gpu_utilization of pods: no custom metrics API (custom.metrics.k8s.io) registered (gpufleet's metrics adapter serves custom.metrics.k8s.io)"},
		{[]string{"top", "nodes"}, "gpu_utilization of nodes: no custom metrics API"},
		{[]string{"top", "deployments"}, `invalid argument "deployments"`},
		{[]string{"cost", "--format", "pdf"}, `--format: unknown format "pdf"`},
	} {
		if _, _, err := run(append(tc.args, kc)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
