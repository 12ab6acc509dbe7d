package localcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// TestIntegrationRealNode runs a pod of gpufleet's own inference-server
// image on a real kubelet and containerd: the Node registers Ready with
// its InternalIP, the pod becomes
// Ready through its real readiness probe, answers on its bridge address,
// and kubectl logs and exec work through kube-apiserver. Deleting the pod
// stops its container with SIGTERM within the grace period.
func TestIntegrationRealNode(t *testing.T) {
	img := clustertest.Image(t, "inference-server")
	c, client, n := clustertest.StartRealNode(t, localcluster.RealNodeOptions{
		Images: []string{img},
	}, localcluster.ControllerManagerOptions{})
	t.Logf("kubelet start to Node Ready: %v", n.KubeletReadyAfter)
	ctx := t.Context()

	node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !localcluster.NodeReady(node) {
		t.Fatalf("node %s not Ready", n.Name)
	}
	var internal string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = a.Address
		}
	}
	if internal != n.Address {
		t.Errorf("node InternalIP %q, want %q", internal, n.Address)
	}

	// No scheduler runs here: the pod names its node, as a static
	// assignment would.
	pod := inferencePod("model")
	pod.Spec.NodeName = n.Name
	created := time.Now()
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPodReady(t, client, n, "default", "model", 2*time.Minute)
	t.Logf("pod create to Ready: %v", time.Since(created))
	if got.Spec.NodeName != n.Name {
		t.Errorf("pod ran on %q", got.Spec.NodeName)
	}
	ip, ok := localcluster.PodIPOnBridge(got)
	if !ok {
		t.Fatalf("pod IP %q is not on the node's bridge %s", got.Status.PodIP, localcluster.PodCIDR)
	}
	resp, err := http.Get("http://" + net.JoinHostPort(ip.String(), "8000") + "/v2/health/ready")
	if err != nil {
		t.Fatalf("pod address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/health/ready on the pod: %s", resp.Status)
	}

	// kubectl logs and exec go through kube-apiserver to the kubelet.
	logs, err := client.CoreV1().Pods("default").GetLogs("model", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || !bytes.Contains(logs, []byte("Serving")) {
		t.Errorf("pod logs (err %v):\n%s", err, logs)
	}
	bins, err := localcluster.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bins, localcluster.Kubectl), "--kubeconfig", c.KubeconfigPath,
		"exec", "model", "--", "/inference-server", "--help").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("kubectl exec: %v\n%s", err, out)
	}

	// Deletion: the kubelet sends SIGTERM; the server drains and exits well
	// within its grace period, and the pod object goes away.
	deleted := time.Now()
	if err := client.CoreV1().Pods("default").Delete(ctx, "model", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		_, err := client.CoreV1().Pods("default").Get(ctx, "model", metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod still there %v after deletion", time.Since(deleted))
		}
		if err := n.Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("pod delete to gone: %v", time.Since(deleted))

	// A second pod keeps running into Stop, which must leave nothing.
	pod = inferencePod("model-2")
	pod.Spec.NodeName = n.Name
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodReady(t, client, n, "default", "model-2", 2*time.Minute)

	// A kubelet that dies is reported at once, with its log tail; Stop
	// still cleans up everything, the running pod's container included.
	if err := syscall.Kill(n.PIDs()[localcluster.Kubelet], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for n.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := n.Err(); err == nil || !strings.Contains(err.Error(), "kubelet exited") || !strings.Contains(err.Error(), "kubelet.log") {
		t.Errorf("after the kubelet was killed, Err() = %v", err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("stopping the node: %v", err)
	}
	if left := realNodeLeftovers(t, n.Dir); len(left) > 0 {
		t.Errorf("after Stop, the node left:\n%s", strings.Join(left, "\n"))
	}
}

// TestIntegrationRealNodeSweptAfterKill: a process running a real node with
// a pod is SIGKILLed (a test binary killed by go test -timeout); its
// guard removes the containers, shims, mounts, cgroups and bridge that the
// kubelet and containerd, dying with it, could not.
func TestIntegrationRealNodeSweptAfterKill(t *testing.T) {
	if os.Getenv(killHelperEnv) == "1" {
		runKilledNodeHelper(t)
		return
	}
	img := clustertest.Image(t, "inference-server")
	if testing.Short() {
		t.Skip("integration test: starts a real node; run without -short")
	}
	if err := localcluster.RealNodeSupported(); err != nil {
		t.Skip(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestIntegrationRealNodeSweptAfterKill$", "-test.v")
	helper.Env = append(os.Environ(), killHelperEnv+"=1", killImageEnv+"="+img)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = helper.Stdout
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var dir string
	var out []string
	timeout := time.After(4 * time.Minute)
	for dir == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("helper exited before its node ran a pod:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if d, ok := strings.CutPrefix(strings.TrimSpace(l), "NODE-DIR "); ok {
				dir = d
			}
		case <-timeout:
			t.Fatalf("helper's node did not run a pod in time:\n%s", strings.Join(out, "\n"))
		}
	}
	go func() {
		for range lines {
		}
	}()
	if left := localcluster.RealNodeLeftovers(dir); len(left) == 0 {
		t.Fatal("the helper's node shows no processes, mounts or cgroups: the check below could not fail")
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := realNodeLeftovers(t, dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after its owner was killed, the node left:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// realNodeLeftovers is localcluster.RealNodeLeftovers while no real node
// runs: a node of a test in another package may start as soon as ours
// stopped.
func realNodeLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	release, err := localcluster.LockRealNodes()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	return localcluster.RealNodeLeftovers(dir)
}

const (
	killHelperEnv = "GPUFLEET_TEST_KILLED_NODE"
	killImageEnv  = "GPUFLEET_TEST_KILLED_NODE_IMAGE"
)

// runKilledNodeHelper starts a node with a Ready pod, prints its
// directory, and waits to be killed.
func runKilledNodeHelper(t *testing.T) {
	_, client, n := clustertest.StartRealNode(t, localcluster.RealNodeOptions{
		Images: []string{os.Getenv(killImageEnv)},
	}, localcluster.ControllerManagerOptions{})
	pod := inferencePod("doomed")
	pod.Spec.NodeName = n.Name
	if _, err := client.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodReady(t, client, n, "default", "doomed", 2*time.Minute)
	fmt.Printf("NODE-DIR %s\n", n.Dir)
	time.Sleep(5 * time.Minute)
}

func inferencePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers: []corev1.Container{{
				Name:            "server",
				Image:           "gpufleet/inference-server:dev",
				ImagePullPolicy: corev1.PullNever,
				Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/v2/health/ready", Port: intstr.FromString("http")}},
					PeriodSeconds: 1,
				},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{localcluster.ResourceGPU: resource.MustParse("1")}},
			}},
		},
	}
}

// waitPodReady polls until the pod is Ready, failing at the deadline or as
// soon as a node component dies, with the pod's status and events.
func waitPodReady(t *testing.T, client kubernetes.Interface, n *localcluster.RealNode, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last *corev1.Pod
	for {
		if err := n.Err(); err != nil {
			t.Fatal(err)
		}
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return p
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s/%s not Ready after %v: %s", ns, name, timeout, describePod(client, last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describePod(client kubernetes.Interface, p *corev1.Pod) string {
	if p == nil {
		return "never seen"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s, conditions %v, containers %v", p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount > 0 {
			logs, err := client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: true}).DoRaw(ctx)
			fmt.Fprintf(&b, "\n  container %s's previous log (err %v):\n%s", cs.Name, err, logs)
		}
	}
	evs, err := client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
	if err == nil {
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "\n  event %s %s: %s", e.Type, e.Reason, e.Message)
		}
	}
	return b.String()
}
