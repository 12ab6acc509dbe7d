package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// TestIntegrationE2ERealNode is the end-to-end story on a real kubelet:
// gpufleet installed with `kubectl apply -k manifests/overlays/local`
// (gpufleet's own images: agent, adapter, scheduler), the model as a
// Deployment of the inference-server image placed by gpufleet-scheduler,
// an HPA on requests_per_second. Real readiness probes decide which pods
// get load; scale-down stops pods with a real SIGTERM and grace period. A
// load step scales the Deployment up, every replica packed on its own GPU
// of the node; a low load scales it down, and no request fails.
func TestIntegrationE2ERealNode(t *testing.T) {
	var images []string
	for _, b := range []string{"gpu-agent", "metrics-adapter", "scheduler-plugin", "inference-server"} {
		images = append(images, clustertest.Image(t, b))
	}
	began := time.Now()
	c, client, n := clustertest.StartRealNode(t, localcluster.RealNodeOptions{
		Images: images,
		Labels: map[string]string{"nvidia.com/gpu.present": "true"},
		Simulated: corev1.ResourceList{
			names.ResourceGPU:      resource.MustParse("8"),
			names.ResourceGPUMilli: resource.MustParse("8000"),
		},
	}, localcluster.ControllerManagerOptions{
		Controllers: localcluster.RealNodeControllers,
		ExtraArgs:   []string{"--horizontal-pod-autoscaler-sync-period=1s"},
	})
	bins, err := localcluster.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	root, err := localcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(bins, localcluster.Kubectl), "--kubeconfig", c.KubeconfigPath,
		"apply", "-k", filepath.Join(root, "manifests", "overlays", "local")).CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k manifests/overlays/local: %v\n%s", err, out)
	}
	ctx := t.Context()
	waitFor(t, n, "gpufleet's components ready", 3*time.Minute, func(ctx context.Context) error {
		for _, d := range []string{"gpufleet-metrics-adapter", "gpufleet-scheduler"} {
			dep, err := client.AppsV1().Deployments("gpufleet-system").Get(ctx, d, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if dep.Status.ReadyReplicas < *dep.Spec.Replicas {
				return fmt.Errorf("%s: %d of %d ready", d, dep.Status.ReadyReplicas, *dep.Spec.Replicas)
			}
		}
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if node.Labels[names.LabelGPUProduct] == "" {
			return fmt.Errorf("gpu-agent has not labelled %s yet", n.Name)
		}
		return nil
	})
	t.Logf("real node, gpufleet installed and ready %.1f s after start", time.Since(began).Seconds())

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stack.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments(stack.Namespace).Create(ctx, realDeployment(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var base string
	waitFor(t, n, "the model's first pod ready", 2*time.Minute, func(ctx context.Context) error {
		pods, err := client.CoreV1().Pods(stack.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stack.AppName})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if podReady(&p) {
				if _, ok := localcluster.PodIPOnBridge(&p); !ok {
					return fmt.Errorf("pod %s has address %q, not on the node's bridge", p.Name, p.Status.PodIP)
				}
				base = "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(stack.ServerPort))
				return nil
			}
		}
		return fmt.Errorf("%d pods, none ready", len(pods.Items))
	})
	body, err := loadgen.V2Request(ctx, http.DefaultClient, base, stack.ModelName, stack.RowsPerRequest)
	if err != nil {
		t.Fatal(err)
	}
	load := loadgen.New(10 * time.Second)
	load.SetBody(body)
	// Only pods Ready by their probe, on the node's bridge, get requests.
	if err := load.FollowPods(ctx, client, stack.Namespace, "app="+stack.AppName, func(p *corev1.Pod) []string {
		if _, ok := localcluster.PodIPOnBridge(p); !ok {
			return nil
		}
		return []string{"http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(stack.ServerPort)) + "/v2/models/" + stack.ModelName + "/infer"}
	}); err != nil {
		t.Fatal(err)
	}
	loadCtx, cancel := context.WithCancel(context.Background())
	var background sync.WaitGroup
	t.Cleanup(func() { cancel(); background.Wait() })
	background.Go(func() { load.Run(loadCtx) })
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(stack.Namespace).Create(ctx, stack.HPA(maxReplicas, targetRPS), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	load.SetRate(stepRPS)
	step := time.Now()
	waitFor(t, n, "scaled up to 4 ready replicas", 2*time.Minute, deploymentAt(client, func(want, ready int32, _ int) bool { return want == maxReplicas && ready == maxReplicas }))
	scaleUp := time.Since(step)
	t.Logf("%d replicas ready %.1f s after the load step", maxReplicas, scaleUp.Seconds())
	pods, err := client.CoreV1().Pods(stack.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stack.AppName})
	if err != nil {
		t.Fatal(err)
	}
	gpus := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		idx := p.Annotations[names.AnnotationGPUIndices]
		if p.Spec.NodeName != n.Name || idx == "" {
			t.Errorf("pod %s on %q with GPU indices %q", p.Name, p.Spec.NodeName, idx)
		}
		if other, ok := gpus[idx]; ok {
			t.Errorf("pods %s and %s share GPU %s", other, p.Name, idx)
		}
		gpus[idx] = p.Name
	}
	t.Logf("model pods by GPU: %v", gpus)

	load.SetRate(lowRPS)
	down := time.Now()
	waitFor(t, n, "scaled down to 1 replica, the others gone", 2*time.Minute, deploymentAt(client, func(want, ready int32, pods int) bool { return want == 1 && ready == 1 && pods == 1 }))
	scaleDown := time.Since(down)
	t.Logf("scaled down to 1 replica, the others stopped, %.1f s after the load dropped", scaleDown.Seconds())
	load.SetRate(0)
	failed := load.Failed()
	if failed > 0 {
		t.Errorf("%d of %d requests failed, last: %s", failed, load.Sent(), load.LastError())
	}
	t.Logf("%d requests sent; wall time %.1f s", load.Sent(), time.Since(began).Seconds())
	summary(t, "real", failed, scaleUp, scaleDown)
}

// realDeployment is stack.Deployment on a real node: the inference-server
// image (its own /models), the CPU backend, a readiness probe that gates
// traffic, and a drain on SIGTERM within the grace period.
func realDeployment() *appsv1.Deployment {
	d := stack.Deployment()
	ctr := &d.Spec.Template.Spec.Containers[0]
	ctr.Image = "gpufleet/inference-server:dev"
	ctr.Args = []string{"--model-repository=/models", "--listen=:" + strconv.Itoa(stack.ServerPort), "--device=cpu",
		"--shutdown-delay=3s", "--shutdown-timeout=20s"}
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/v2/health/ready", Port: intstr.FromString("http")}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
	mem := resource.MustParse("256Mi")
	ctr.Resources.Requests[corev1.ResourceMemory] = mem
	ctr.Resources.Limits[corev1.ResourceMemory] = mem
	return d
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deploymentAt is a waitFor condition on the model's Deployment: desired
// and ready replicas, and pods including terminating ones.
func deploymentAt(client kubernetes.Interface, ok func(want, ready int32, pods int) bool) func(context.Context) error {
	return func(ctx context.Context) error {
		d, err := client.AppsV1().Deployments(stack.Namespace).Get(ctx, stack.AppName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pods, err := client.CoreV1().Pods(stack.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stack.AppName})
		if err != nil {
			return err
		}
		if !ok(*d.Spec.Replicas, d.Status.ReadyReplicas, len(pods.Items)) {
			return fmt.Errorf("replicas %d, ready %d, pods %d", *d.Spec.Replicas, d.Status.ReadyReplicas, len(pods.Items))
		}
		return nil
	}
}

// waitFor polls cond until it holds, failing t at the deadline with the
// last reason, or at once when a node component died.
func waitFor(t *testing.T, n *localcluster.RealNode, what string, timeout time.Duration, cond func(context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := n.Err(); err != nil {
			return false, err
		}
		last = cond(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %v: %v (last: %v)", what, timeout, err, last)
	}
}

// summary prints the contract line of make e2e and writes it where the
// Makefile reads it ($GPUFLEET_E2E_SUMMARY, one line per node kind).
func summary(t *testing.T, node string, failed int64, up, down time.Duration) {
	line := fmt.Sprintf("e2e node=%s failed_requests=%d scale_up_s=%.1f scale_down_s=%.1f", node, failed, up.Seconds(), down.Seconds())
	t.Log(line)
	if dir := os.Getenv("GPUFLEET_E2E_SUMMARY"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, node), []byte(line+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
}
