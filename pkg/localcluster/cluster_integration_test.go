package localcluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

func TestIntegrationGPUNodePodAndDeployment(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	ctx := t.Context()

	node, err := localcluster.CreateGPUNode(ctx, client, localcluster.GPUNode{Name: "v100-0"})
	if err != nil {
		t.Fatal(err)
	}
	gpus := node.Status.Allocatable[localcluster.ResourceGPU]
	milli := node.Status.Allocatable[localcluster.ResourceGPUMilli]
	if gpus.Value() != 8 || milli.Value() != 8000 {
		t.Fatalf("node allocatable: %d GPUs, %d gpu-milli; want 8 and 8000", gpus.Value(), milli.Value())
	}
	if node.Labels[localcluster.LabelGPUProduct] != "Tesla-V100-SXM2-16GB" {
		t.Fatalf("node labels: %v", node.Labels)
	}
	for _, taint := range node.Spec.Taints {
		t.Errorf("node keeps taint %v", taint)
	}

	// The kubeconfig file works on its own, as kubectl would use it.
	fileCfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	fileClient := kubernetes.NewForConfigOrDie(fileCfg)
	nodes, err := fileClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing nodes with %s: %v", c.KubeconfigPath, err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "v100-0" {
		t.Fatalf("nodes through kubeconfig: %v", nodes.Items)
	}

	gpuPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "model", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "server", Image: "gpufleet/inference-server",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{localcluster.ResourceGPU: resource.MustParse("1")}},
		}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, gpuPod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a GPU pod: %v", err)
	}

	// Without kube-controller-manager a Deployment makes no pods...
	labels := map[string]string{"app": "model-server"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "model-server", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "gpufleet/inference-server"}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := metav1.ListOptions{LabelSelector: "app=model-server"}
	if pods, err := client.CoreV1().Pods("default").List(ctx, sel); err != nil || len(pods.Items) != 0 {
		t.Fatalf("before the controller manager runs: %d pods, err %v; want none", len(pods.Items), err)
	}

	// A misspelt controller is a clear error, and leaves room for a retry.
	err = c.StartControllerManager(ctx, localcluster.ControllerManagerOptions{Controllers: []string{"deployment", "replica-set"}})
	if err == nil || !strings.Contains(err.Error(), "replica-set") || !strings.Contains(err.Error(), "is not in the list of known controllers") {
		t.Fatalf("starting kube-controller-manager with an unknown controller: %v", err)
	}
	// ...and once it runs, its ReplicaSet creates them.
	clustertest.StartControllerManager(t, c, localcluster.ControllerManagerOptions{})
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, sel)
		if err != nil {
			return false, err
		}
		owned := 0
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "ReplicaSet" {
				owned++
			}
		}
		return owned == 3, nil
	})
	if err != nil {
		t.Fatalf("waiting for the Deployment's ReplicaSet to create 3 pods: %v", err)
	}
	// The serviceaccount controller runs too: namespaces get a default account.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("waiting for the default ServiceAccount: %v", err)
	}
}

func TestIntegrationStopLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	c, err := localcluster.Start(ctx, localcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	if err := c.StartControllerManager(ctx, localcluster.ControllerManagerOptions{Controllers: []string{"deployment-controller"}}); err != nil {
		t.Fatal(err)
	}
	pids, ports, dir := c.PIDs(), c.Ports(), c.Dir
	if len(pids) < 3 {
		t.Fatalf("want at least 3 children (etcd, apiserver, controller manager), got %v", pids)
	}
	for _, pid := range pids {
		if !localcluster.Alive(pid) {
			t.Fatalf("child %d is not running before Stop", pid)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	for _, pid := range pids {
		if localcluster.Alive(pid) {
			t.Errorf("child %d still runs after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s remains after Stop (stat: %v)", dir, err)
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Errorf("port %d still taken after Stop: %v", port, err)
			continue
		}
		_ = l.Close()
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.StartControllerManager(ctx, localcluster.ControllerManagerOptions{}); err == nil {
		t.Error("StartControllerManager after Stop succeeded")
	}
}

func TestIntegrationTwoControlPlanesInParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var (
		wg       sync.WaitGroup
		clusters [2]*localcluster.Cluster
		errs     [2]error
	)
	for i := range clusters {
		wg.Go(func() {
			clusters[i], errs[i] = localcluster.Start(t.Context(), localcluster.Options{})
		})
	}
	wg.Wait()
	for i, c := range clusters {
		if c != nil {
			t.Cleanup(func() { _ = c.Stop() })
		}
		if errs[i] != nil {
			t.Fatalf("control plane %d: %v", i, errs[i])
		}
	}
	a, b := clusters[0], clusters[1]
	if a.Dir == b.Dir {
		t.Errorf("both use directory %s", a.Dir)
	}
	seen := map[int]bool{}
	for _, p := range a.Ports() {
		seen[p] = true
	}
	for _, p := range b.Ports() {
		if seen[p] {
			t.Errorf("port %d used by both", p)
		}
	}
	// They are separate clusters: what is made in one is not in the other.
	ca := kubernetes.NewForConfigOrDie(a.Config)
	cb := kubernetes.NewForConfigOrDie(b.Config)
	if _, err := localcluster.CreateGPUNode(t.Context(), ca, localcluster.GPUNode{Name: "only-in-a"}); err != nil {
		t.Fatal(err)
	}
	nodes, err := cb.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 0 {
		t.Errorf("cluster b sees nodes %v created in cluster a", nodes.Items)
	}
	if fmt.Sprint(a.EtcdURL) == fmt.Sprint(b.EtcdURL) {
		t.Errorf("both use etcd %s", a.EtcdURL)
	}
}

const processHelperEnv = "GPUFLEET_CONTROLPLANE_HELPER"

// helperReport is what TestHelperControlPlaneProcess prints about its cluster.
type helperReport struct {
	Dir   string `json:"dir"`
	Ports []int  `json:"ports"`
	PIDs  []int  `json:"pids"`
}

// TestHelperControlPlaneProcess is not a test on its own: run as a separate
// process by TestIntegrationControlPlanesInSeparateProcesses, it starts a
// control plane, reports it on stdout and stops it when stdin closes.
func TestHelperControlPlaneProcess(t *testing.T) {
	if os.Getenv(processHelperEnv) == "" {
		t.Skip("helper process")
	}
	c, err := localcluster.Start(t.Context(), localcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop() }()
	data, _ := json.Marshal(helperReport{Dir: c.Dir, Ports: c.Ports(), PIDs: c.PIDs()})
	fmt.Printf("report=%s\n", data)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// Test binaries of different packages run in parallel under `go test ./...`:
// their control planes must not collide, and each must clean up after itself.
func TestIntegrationControlPlanesInSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	type helper struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		report helperReport
		err    error
	}
	helpers := make([]*helper, 2)
	var wg sync.WaitGroup
	for i := range helpers {
		h := &helper{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperControlPlaneProcess$", "-test.timeout=5m")}
		helpers[i] = h
		h.cmd.Env = append(os.Environ(), processHelperEnv+"=1")
		h.cmd.Stderr = os.Stderr
		var err error
		if h.stdin, err = h.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := h.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.cmd.Process.Kill(); _ = h.cmd.Wait() })
		wg.Go(func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "report="); ok {
					h.err = json.Unmarshal([]byte(v), &h.report)
					go func() { _, _ = io.Copy(io.Discard, stdout) }()
					return
				}
			}
			h.err = fmt.Errorf("helper exited without a report (%v)", sc.Err())
		})
	}
	wg.Wait()
	for _, h := range helpers {
		if h.err != nil {
			t.Fatal(h.err)
		}
	}
	a, b := helpers[0].report, helpers[1].report
	if a.Dir == b.Dir {
		t.Errorf("both processes use %s", a.Dir)
	}
	for _, pa := range a.Ports {
		if slices.Contains(b.Ports, pa) {
			t.Errorf("port %d used by both processes", pa)
		}
	}
	for _, h := range helpers {
		_ = h.stdin.Close()
		if err := h.cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
		for _, pid := range h.report.PIDs {
			if localcluster.Alive(pid) {
				t.Errorf("child %d of a finished helper still runs", pid)
			}
		}
		if _, err := os.Stat(h.report.Dir); !os.IsNotExist(err) {
			t.Errorf("helper left %s behind", h.report.Dir)
		}
	}
}
