package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

// The agent on a simulated node of a real control plane: it labels its
// node, and attributes a GPU process to its pod through the process's
// cgroup and the pod index it keeps from the API server.
func TestIntegrationAgentOnLocalCluster(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	ctx := t.Context()
	if _, err := localcluster.CreateGPUNode(ctx, client, localcluster.GPUNode{Name: "gpu-node-0"}); err != nil {
		t.Fatal(err)
	}
	const cid = "4f2a9c0e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bert-0", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "gpu-node-0", Containers: []corev1.Container{{Name: "server", Image: "gpufleet/inference-server"}}},
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "server", ContainerID: "containerd://" + cid}}
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	podUID := string(pod.UID)

	// A real process stands for the model server; a proc root of our own
	// puts it in the pod's cgroup.
	proc := exec.Command("sleep", "600")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	procRoot := t.TempDir()
	pidDir := filepath.Join(procRoot, strconv.Itoa(proc.Process.Pid))
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cgroup := fmt.Sprintf("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope\n",
		strings.ReplaceAll(podUID, "-", "_"), cid)
	if err := os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte(cgroup), 0o644); err != nil {
		t.Fatal(err)
	}

	simDir := t.TempDir()
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.NVML, o.Listen, o.NodeName, o.Kubeconfig = NVMLMock, addr, "gpu-node-0", c.KubeconfigPath
	o.ProcRoot, o.SimDir, o.PodResources, o.Interval = procRoot, simDir, "", 200*time.Millisecond
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, o) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("agent did not stop within 15s")
		}
	})

	// The node gets the labels only the agent writes.
	poll(t, "the node's GPU labels", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, "gpu-node-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return n.Labels[names.LabelGPUDriverVersion] == sim.DriverVersion && n.Annotations[names.AnnotationGPUTopology] != "", nil
	})

	// The process keeps GPU 3 about 40 % busy.
	busy := 0.0
	report := func() {
		data, _ := json.Marshal(activity.Activity{PID: uint32(proc.Process.Pid), GPUs: []activity.GPUUse{{Index: 3, BusySecondsTotal: busy, MemoryBytes: 1 << 30}}})
		if err := os.WriteFile(filepath.Join(simDir, "model.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report()
	want := `gpufleet_pod_gpu_utilization_ratio{container="server",gpu="3",namespace="default",pod="bert-0",uuid=`
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		busy += 0.04
		report()
		body, err := testutil.Get(ctx, "http://"+addr+"/metrics")
		if err != nil {
			return false, nil
		}
		last = body
		v, ok := testutil.SeriesValue(body, want)
		return ok && v > 0.1, nil
	})
	if err != nil {
		t.Fatalf("no utilization attributed to pod bert-0 on GPU 3: %v\nlast /metrics:\n%s", err, testutil.Lines(last, "gpufleet_pod_"))
	}
	if !strings.Contains(last, `gpufleet_pod_gpu_memory_used_bytes{container="server",gpu="3",namespace="default",pod="bert-0"`) {
		t.Errorf("no pod memory series:\n%s", testutil.Lines(last, "gpufleet_pod_"))
	}
}

func poll(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return cond()
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
