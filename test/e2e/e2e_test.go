package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	maxReplicas = 4
	targetRPS   = 5  // the HPA's requests_per_second per pod
	stepRPS     = 20 // the load step: maxReplicas x targetRPS
	lowRPS      = 4  // the steady load kept while the HPA scales down: 1 replica's worth
	rowsPerReq  = 64 // rows per inference request (property-value's maximum batch)
)

// The simulated cluster: two 8-GPU V100 nodes (16 and 32 GB) the model
// accepts, and a T4 node it must never land on.
var clusterNodes = []localcluster.GPUNode{
	{Name: "v100-a", Model: "V100M16", GPUs: 8},
	{Name: "v100-b", Model: "V100M32", GPUs: 8},
	{Name: "t4-a", Model: "T4", GPUs: 4},
}

// TestIntegrationE2EAutoscaledServing runs the whole system with the real
// binaries: kube-controller-manager (Deployments, ReplicaSets, the HPA),
// bin/scheduler-plugin as gpufleet-scheduler, bin/metrics-adapter
// registered as the custom metrics API, one bin/gpu-agent per simulated
// node, and bin/inference-server for every model pod, each process on its
// pod's own loopback address. A load step of real v2 inference requests
// makes the HPA scale the Deployment up on requests_per_second, the
// servers' batches make the simulated GPUs busy, and when the load drops
// the HPA scales down without failing a request. Model pods land on V100
// nodes only, packed onto one of them.
func TestIntegrationE2EAutoscaledServing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a control plane and about ten processes for half a minute; run without -short")
	}
	began := time.Now()
	bins, err := binaries.Ensure(t.Context(), "", binaries.GPUAgent, binaries.InferenceServer, binaries.MetricsAdapter, binaries.SchedulerPlugin)
	if err != nil {
		t.Fatal(err)
	}
	logBinaries(t, bins)
	// Directories first: cleanups run last-registered first, so they are
	// removed after every process writing to them has stopped.
	dir, repo := t.TempDir(), modelRepository(t)
	c, client := clustertest.Start(t, localcluster.Options{})
	clustertest.StartControllerManager(t, c, localcluster.ControllerManagerOptions{
		Controllers: []string{"deployment-controller", "replicaset-controller", "horizontal-pod-autoscaler-controller"},
		ExtraArgs:   []string{"--horizontal-pod-autoscaler-sync-period=1s"},
	})
	// Runners (and the programs they run), load and sampling end before the
	// control plane stops.
	ctx, cancel := context.WithCancel(context.Background())
	var background sync.WaitGroup
	t.Cleanup(func() { cancel(); background.Wait() })

	startScheduler(t, c, bins, dir)
	startAdapter(t, c, bins, dir)
	t.Logf("control plane, scheduler and adapter up after %.1f s", time.Since(began).Seconds())

	env := nodeEnv{client: client, kubeconfig: c.KubeconfigPath, bins: bins, repo: repo, dir: dir}
	// Each node's pods get their own block of 127.0.0.0/8, away from other
	// tests' runners (127.0.x.y) and from another run of this test.
	firstBlock := 100 + (os.Getpid()%40)*3
	var nodes []*simNode
	for i, spec := range clusterNodes {
		background.Add(1)
		nodes = append(nodes, startNode(ctx, t, env, spec, byte(firstBlock+i), background.Done))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("node %s programs (last 20 lines each):\n%s", n.Name, n.workload.LogTails(20))
			}
			dumpState(t, client)
		}
	})
	if _, err := noderunner.WaitRunning(ctx, client, "kube-system", agentSelector, len(nodes), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitAgentLabels(t, client)

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments(namespace).Create(ctx, modelDeployment(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods, err := noderunner.WaitRunning(ctx, client, namespace, "app="+appName, 1, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// Requests as the server describes its models: one body serves both,
	// since wide takes property-value's input.
	base := "http://" + net.JoinHostPort(pods[0].Status.PodIP, strconv.Itoa(serverPort))
	body, err := loadgen.V2Request(ctx, http.DefaultClient, base, modelName, rowsPerReq)
	if err != nil {
		t.Fatal(err)
	}
	if wide, err := loadgen.V2Request(ctx, http.DefaultClient, base, wideName, rowsPerReq); err != nil || !bytes.Equal(wide, body) {
		t.Fatalf("%s takes another request than %s: %v", wideName, modelName, err)
	}
	load := loadgen.New(10 * time.Second)
	load.SetBody(body)
	err = load.FollowPods(ctx, client, namespace, "app="+appName, func(p *corev1.Pod) []string {
		base := "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(serverPort)) + "/v2/models/"
		return []string{base + modelName + "/infer", base + wideName + "/infer"}
	})
	if err != nil {
		t.Fatal(err)
	}
	background.Go(func() { load.Run(ctx) })

	cm, _, err := adaptertest.MetricsClients(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	tl := newTimeline(client, cm, load, nodeNames())
	background.Go(func() { tl.run(ctx) })
	defer func() { t.Logf("timeline (load: %d requests sent, %d failed):\n%s", load.Sent(), load.Failed(), tl) }()
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Create(ctx, modelHPA(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Load step: the HPA scales up within 60 s.
	tl.setPhase("step")
	load.SetRate(stepRPS)
	step := time.Now()
	waitDeployment(t, client, "scaled up (more than 1 replica)", 60*time.Second, func(want, _ int32, _ int) bool { return want > 1 })
	t.Logf("HPA scaled up %.1f s after the load step", time.Since(step).Seconds())
	waitDeployment(t, client, "at 4 ready replicas", 90*time.Second, func(want, ready int32, _ int) bool { return want == maxReplicas && ready == maxReplicas })
	t.Logf("%d replicas ready %.1f s after the load step", maxReplicas, time.Since(step).Seconds())
	packed := checkPacked(t, client)

	// Hold the step until the load is spread over every replica: the HPA
	// reads about targetRPS per pod and stays at maxReplicas. The inference
	// servers' batches show as GPU utilization of their node.
	tl.setPhase("hold")
	waitHPASteady(t, client)
	var util float64
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		util = tl.nodeUtilization(packed)
		return util > 0, nil
	})
	if err != nil {
		t.Fatalf("node %s gpu_utilization never rose above 0 under load (last %v)", packed, util)
	}

	// Low steady load: the HPA scales down to 1, no request fails.
	tl.setPhase("low")
	load.SetRate(lowRPS)
	down := time.Now()
	waitDeployment(t, client, "scaled down to 1 replica, the others gone", 90*time.Second, func(want, ready int32, pods int) bool { return want == 1 && ready == 1 && pods == 1 })
	t.Logf("HPA scaled down to 1 replica, the others stopped, %.1f s after the load dropped to %d rps", time.Since(down).Seconds(), lowRPS)
	failed := load.Failed()
	if failed > 0 {
		t.Errorf("%d of %d requests failed up to the scale-down, last: %s", failed, load.Sent(), load.LastError())
	}

	// No load: the GPUs fall idle.
	tl.setPhase("none")
	load.SetRate(0)
	busy := map[string]float64{}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		clear(busy)
		for _, n := range nodeNames() {
			if u := tl.nodeUtilization(n); u != 0 {
				busy[n] = u
			}
		}
		return len(busy) == 0, nil
	})
	if err != nil {
		t.Errorf("gpu_utilization did not fall back to 0 without load: %v (NaN: no value)", busy)
	}
	tl.sample(ctx) // the timeline's last line shows the idle GPUs

	used := map[string]bool{}
	for pod, node := range tl.nodesSeen() {
		used[node] = true
		if node != packed {
			t.Errorf("model pod %s ran on %s, want every replica on %s (packed while it had free GPUs)", pod, node, packed)
		}
	}
	for _, n := range nodeNames() {
		if m := tl.maxUtilization(n); !used[n] && m != 0 {
			t.Errorf("node %s, which ran no model pod, had gpu_utilization %v", n, m)
		}
	}
	if tl.maxUtilization(packed) == 0 {
		t.Errorf("the timeline never sampled gpu_utilization above 0 on %s", packed)
	}
	if load.Failed() > failed {
		t.Errorf("%d requests failed after the scale-down, last: %s", load.Failed()-failed, load.LastError())
	}
	t.Logf("wall time %.1f s", time.Since(began).Seconds())
}

// logBinaries says which binaries run and when they were built: present
// ones are used as they are (make e2e runs make build first; make test
// does not).
func logBinaries(t *testing.T, bins map[string]string) {
	var parts []string
	for _, name := range []string{binaries.SchedulerPlugin, binaries.MetricsAdapter, binaries.GPUAgent, binaries.InferenceServer} {
		if st, err := os.Stat(bins[name]); err == nil {
			parts = append(parts, fmt.Sprintf("%s (built %s)", bins[name], st.ModTime().Format(time.DateTime)))
		}
	}
	t.Logf("binaries: %s", strings.Join(parts, ", "))
}

func nodeNames() []string {
	var out []string
	for _, n := range clusterNodes {
		out = append(out, n.Name)
	}
	return out
}

// waitAgentLabels waits until every agent has labelled its node with the
// driver version only it knows (the node objects start with the others).
func waitAgentLabels(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	var missing []string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		missing = missing[:0]
		for _, n := range clusterNodes {
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || node.Labels[names.LabelGPUDriverVersion] == "" {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		t.Fatalf("nodes %v never got the gpu-agent's %s label: %v", missing, names.LabelGPUDriverVersion, err)
	}
}

// waitHPASteady waits until the HPA wants maxReplicas and reads an average
// requests_per_second per pod near its target.
func waitHPASteady(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("desired %d, metrics %+v", hpa.Status.DesiredReplicas, hpa.Status.CurrentMetrics)
		if hpa.Status.DesiredReplicas != maxReplicas || len(hpa.Status.CurrentMetrics) != 1 || hpa.Status.CurrentMetrics[0].Pods == nil ||
			hpa.Status.CurrentMetrics[0].Pods.Current.AverageValue == nil {
			return false, nil
		}
		avg := hpa.Status.CurrentMetrics[0].Pods.Current.AverageValue.AsApproximateFloat64()
		return avg > 0.6*targetRPS && avg < 1.4*targetRPS, nil
	})
	if err != nil {
		t.Fatalf("HPA not steady at %d replicas and about %d requests/s per pod (last: %s): %v", maxReplicas, targetRPS, last, err)
	}
}

// waitDeployment polls until ok(desired replicas, ready replicas, model
// pods including terminating ones) holds.
func waitDeployment(t *testing.T, client kubernetes.Interface, what string, timeout time.Duration, ok func(want, ready int32, pods int) bool) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + appName})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("replicas %d, ready %d, pods %d", *d.Spec.Replicas, d.Status.ReadyReplicas, len(pods.Items))
		return ok(*d.Spec.Replicas, d.Status.ReadyReplicas, len(pods.Items)), nil
	})
	if err != nil {
		t.Fatalf("Deployment not %s within %v (last: %s)", what, timeout, last)
	}
}

// checkPacked checks that the running model pods share one V100 node, each
// on its own GPU, and returns the node holding most of them. Failures are
// reported without stopping the test, so the autoscaling checks still run.
func checkPacked(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	pods, err := client.CoreV1().Pods(namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + appName})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string][]string{}
	gpus := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		idx := p.Annotations[names.AnnotationGPUIndices]
		perNode[p.Spec.NodeName] = append(perNode[p.Spec.NodeName], p.Name+"@gpu"+idx)
		if other, ok := gpus[p.Spec.NodeName+"/"+idx]; ok {
			t.Errorf("pods %s and %s share GPU %s of %s", other, p.Name, idx, p.Spec.NodeName)
		}
		gpus[p.Spec.NodeName+"/"+idx] = p.Name
	}
	var packed string
	for node, ps := range perNode {
		sort.Strings(ps)
		if !strings.HasPrefix(nodeModel(node), "V100") {
			t.Errorf("model pods %v on %s (%s), want V100 nodes only", ps, node, nodeModel(node))
		}
		if packed == "" || len(ps) > len(perNode[packed]) || len(ps) == len(perNode[packed]) && node < packed {
			packed = node
		}
	}
	t.Logf("model pods per node: %v", perNode)
	if len(perNode) != 1 {
		t.Errorf("model pods on %d nodes, want all %d on one V100 node (8 GPUs: room for every replica)", len(perNode), len(pods.Items))
	}
	return packed
}

func nodeModel(name string) string {
	for _, n := range clusterNodes {
		if n.Name == name {
			return n.Model
		}
	}
	return ""
}

// dumpState logs the HPA and the model pods, for a failed test.
func dumpState(t *testing.T, client kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, appName, metav1.GetOptions{}); err == nil {
		t.Logf("HPA status: %+v", hpa.Status)
	}
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s/%s node %q phase %s ready %v ip %s gpus %q deleting %v", p.Namespace, p.Name, p.Spec.NodeName,
			p.Status.Phase, noderunner.Ready(&p), p.Status.PodIP, p.Annotations[names.AnnotationGPUIndices], p.DeletionTimestamp != nil)
	}
}
