package app

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

func TestClusterOptionsValidateReportsEveryError(t *testing.T) {
	o := newClusterOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	o.Dir, o.GPUNodes, o.GPUModel, o.GPUsPerNode, o.Controllers, o.Timeout = "", -1, "K80", 0, nil, 0
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--dir", "--gpu-nodes=-1", `unknown GPU model "K80"`, "--gpus-per-node=0", "--controllers", "--timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestContainsAll(t *testing.T) {
	args := []string{"/bin/gpufleet", "cluster", "up", "--dir", "x", "--foreground"}
	if !containsAll(args, "cluster", "up", "--foreground") {
		t.Error("supervisor command line not recognised")
	}
	if containsAll([]string{"/bin/gpufleet", "cluster", "up"}, "cluster", "up", "--foreground") {
		t.Error("background `up` taken for the supervisor")
	}
}

// gpufleet builds this command into a temporary directory.
func gpufleet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gpufleet")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gpufleet/gpufleet/cmd/gpufleet").CombinedOutput()
	if err != nil {
		t.Fatalf("building gpufleet: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestIntegrationClusterUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a control plane")
	}
	bin := gpufleet(t)
	dir := filepath.Join(t.TempDir(), "local")
	down := func() { _, _ = run(t, bin, "cluster", "down", "--dir", dir) }
	t.Cleanup(down)

	out, err := run(t, bin, "cluster", "up", "--dir", dir, "--gpu-nodes", "3", "--gpus-per-node", "4", "--timeout", "2m")
	if err != nil {
		t.Fatalf("cluster up: %v\n%s\nsupervisor log:\n%s", err, out, localcluster.TailFile(filepath.Join(dir, logFile), 40))
	}
	if !strings.Contains(out, "local cluster ready") {
		t.Errorf("cluster up said: %s", out)
	}
	st, err := readState(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	pids := append([]int{st.PID}, st.ChildPIDs...)
	if len(pids) < 4 {
		t.Fatalf("want a supervisor and 3 children, got %v", pids)
	}
	for _, pid := range pids {
		if !localcluster.Alive(pid) {
			t.Fatalf("pid %d of the running cluster is not alive", pid)
		}
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: localcluster.LabelSimulated + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("want 3 simulated nodes, got %d", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		q := n.Status.Allocatable[localcluster.ResourceGPU]
		if q.Value() != 4 || n.Labels[localcluster.LabelGPUCount] != "4" {
			t.Errorf("node %s: %s GPUs, label %q; want 4", n.Name, q.String(), n.Labels[localcluster.LabelGPUCount])
		}
	}

	if out, err := run(t, bin, "cluster", "status", "--dir", dir); err != nil || !strings.Contains(out, "ready") {
		t.Errorf("cluster status: %v: %s", err, out)
	}
	if out, err := run(t, bin, "cluster", "up", "--dir", dir); err == nil || !strings.Contains(out, "already runs") {
		t.Errorf("second cluster up: err %v, output %s; want a refusal", err, out)
	}

	start := time.Now()
	if out, err := run(t, bin, "cluster", "down", "--dir", dir); err != nil || !strings.Contains(out, "stopped") {
		t.Fatalf("cluster down: %v: %s", err, out)
	}
	t.Logf("cluster down took %s", time.Since(start))
	for _, pid := range pids {
		if localcluster.Alive(pid) {
			t.Errorf("pid %d still runs after cluster down", pid)
		}
	}
	for _, f := range []string{pidFile, stateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s remains after cluster down", f)
		}
	}
	if out, err := run(t, bin, "cluster", "down", "--dir", dir); err != nil || !strings.Contains(out, "no local cluster") {
		t.Errorf("second cluster down: %v: %s", err, out)
	}
}

func TestClusterUpRejectsBadFlagsClearly(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"cluster", "up", "--dir", t.TempDir(), "--gpu-model", "K80", "--gpus-per-node", "40"})
	err := cmd.Execute()
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{"K80", "known models are", "--gpus-per-node=40"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
