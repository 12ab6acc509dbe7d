package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	maxReplicas = 4
	targetRPS   = 5  // the HPA's requests_per_second per pod
	stepRPS     = 20 // the load step: maxReplicas x targetRPS
	lowRPS      = 4  // the steady load kept while the HPA scales down: 1 replica's worth
)

// TestIntegrationE2EAutoscaledServing runs the whole system with the real
// binaries (internal/stack): kube-controller-manager (Deployments,
// ReplicaSets, the HPA), bin/scheduler-plugin as gpufleet-scheduler,
// bin/metrics-adapter registered as the custom metrics API, one
// bin/gpu-agent per simulated node (two V100 nodes the model accepts, a T4
// node it must never land on), and bin/inference-server for every model
// pod, each process on its pod's own loopback address. A load step of real
// v2 inference requests makes the HPA scale the Deployment up on
// requests_per_second, the servers' batches make the simulated GPUs busy,
// and when the load drops the HPA scales down without failing a request.
// Model pods land on V100 nodes only, packed onto one of them.
func TestIntegrationE2EAutoscaledServing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a control plane and about ten processes for half a minute; run without -short")
	}
	began := time.Now()
	s := startStack(t, stack.Options{})
	logBinaries(t, s.Binaries)
	t.Logf("control plane, scheduler, adapter and %d nodes with their gpu-agents up after %.1f s", len(s.Nodes), time.Since(began).Seconds())
	client := s.Client
	// Load and sampling end before the stack stops.
	ctx, cancel := context.WithCancel(context.Background())
	var background sync.WaitGroup
	t.Cleanup(func() { cancel(); background.Wait() })
	load := deployWithLoad(t, ctx, s, &background)

	tl := s.NewRecorder(load)
	tl.SetLabel("idle")
	background.Go(func() { tl.Run(ctx, time.Second, nil) })
	defer func() {
		t.Logf("timeline (load: %d requests sent, %d failed):\n%s", load.Sent(), load.Failed(), timeline(s.NodeNames(), tl.Samples()))
	}()
	if err := s.CreateHPA(ctx, maxReplicas, targetRPS); err != nil {
		t.Fatal(err)
	}

	// Load step: the HPA scales up within 60 s.
	tl.SetLabel("step")
	load.SetRate(stepRPS)
	step := time.Now()
	waitDeployment(t, client, "scaled up (more than 1 replica)", 60*time.Second, func(want, _ int32, _ int) bool { return want > 1 })
	t.Logf("HPA scaled up %.1f s after the load step", time.Since(step).Seconds())
	waitDeployment(t, client, "at 4 ready replicas", 90*time.Second, func(want, ready int32, _ int) bool { return want == maxReplicas && ready == maxReplicas })
	scaleUp := time.Since(step)
	t.Logf("%d replicas ready %.1f s after the load step", maxReplicas, scaleUp.Seconds())
	packed := checkPacked(t, s)

	// Hold the step until the load is spread over every replica: the HPA
	// reads about targetRPS per pod and stays at maxReplicas. The inference
	// servers' batches show as GPU utilization of their node.
	tl.SetLabel("hold")
	waitHPASteady(t, client)
	var util float64
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		util = s.NodeUtilization(packed)
		return util > 0, nil
	})
	if err != nil {
		t.Fatalf("node %s gpu_utilization never rose above 0 under load (last %v)", packed, util)
	}

	// Low steady load: the HPA scales down to 1, no request fails.
	tl.SetLabel("low")
	load.SetRate(lowRPS)
	down := time.Now()
	waitDeployment(t, client, "scaled down to 1 replica, the others gone", 90*time.Second, func(want, ready int32, pods int) bool { return want == 1 && ready == 1 && pods == 1 })
	scaleDown := time.Since(down)
	t.Logf("HPA scaled down to 1 replica, the others stopped, %.1f s after the load dropped to %d rps", scaleDown.Seconds(), lowRPS)
	failed := load.Failed()
	if failed > 0 {
		t.Errorf("%d of %d requests failed up to the scale-down, last: %s", failed, load.Sent(), load.LastError())
	}
	summary(t, "simulated", failed, scaleUp, scaleDown)
	checkCanary(t, s)

	// No load: the GPUs fall idle.
	tl.SetLabel("none")
	load.SetRate(0)
	busy := map[string]float64{}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		clear(busy)
		for _, n := range s.NodeNames() {
			if u := s.NodeUtilization(n); u != 0 {
				busy[n] = u
			}
		}
		return len(busy) == 0, nil
	})
	if err != nil {
		t.Errorf("gpu_utilization did not fall back to 0 without load: %v (NaN: no value)", busy)
	}
	tl.Sample(ctx) // the timeline's last line shows the idle GPUs

	used := map[string]bool{}
	for pod, node := range tl.NodesSeen() {
		used[node] = true
		if node != packed {
			t.Errorf("model pod %s ran on %s, want every replica on %s (packed while it had free GPUs)", pod, node, packed)
		}
	}
	for _, n := range s.NodeNames() {
		if m := tl.MaxUtilization(n); !used[n] && m != 0 {
			t.Errorf("node %s, which ran no model pod, had gpu_utilization %v", n, m)
		}
	}
	if tl.MaxUtilization(packed) == 0 {
		t.Errorf("the timeline never sampled gpu_utilization above 0 on %s", packed)
	}
	if load.Failed() > failed {
		t.Errorf("%d requests failed after the scale-down, last: %s", load.Failed()-failed, load.LastError())
	}
	t.Logf("wall time %.1f s", time.Since(began).Seconds())
}

// startStack starts the system for t and stops it with t, printing its
// diagnostics if t failed.
func startStack(t *testing.T, opts stack.Options) *stack.Stack {
	t.Helper()
	s, err := stack.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", s.Diagnostics(40))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	return s
}

// deployWithLoad deploys the model, waits for its first pod, and runs a
// load generator at rate 0 following its ready pods until ctx ends.
func deployWithLoad(t *testing.T, ctx context.Context, s *stack.Stack, background *sync.WaitGroup) *loadgen.Generator {
	t.Helper()
	if err := s.DeployModel(ctx); err != nil {
		t.Fatal(err)
	}
	load, err := s.NewLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	background.Go(func() { load.Run(ctx) })
	return load
}

// checkCanary checks that the model router, which every request went
// through, sent property-value's version 2 its share (stack.CanaryPercent)
// within six standard deviations of the binomial mean.
func checkCanary(t *testing.T, s *stack.Stack) {
	t.Helper()
	split, err := s.RouterSplit(t.Context())
	if err != nil {
		t.Errorf("reading the router's split: %v", err)
		return
	}
	n, canary := split["1"]+split["2"], split["2"]
	p := float64(stack.CanaryPercent) / 100
	mean, sd := n*p, math.Sqrt(n*p*(1-p))
	t.Logf("through the model router: property-value version 1 got %.0f requests, the version 2 canary %.0f (%.1f %%, want %d %%)", split["1"], canary, 100*canary/max(n, 1), stack.CanaryPercent)
	if n < 20 || math.Abs(canary-mean) > 6*sd {
		t.Errorf("canary got %.0f of %.0f property-value requests through the router, want %.0f ± %.0f", canary, n, mean, 6*sd)
	}
}

// logBinaries says which binaries run and when they were built: present
// ones are used as they are (make e2e runs make build first; make test
// does not).
func logBinaries(t *testing.T, bins map[string]string) {
	var parts []string
	for _, name := range []string{binaries.SchedulerPlugin, binaries.MetricsAdapter, binaries.GPUAgent, binaries.InferenceServer, binaries.ModelRouter} {
		if st, err := os.Stat(bins[name]); err == nil {
			parts = append(parts, fmt.Sprintf("%s (built %s)", bins[name], st.ModTime().Format(time.DateTime)))
		}
	}
	t.Logf("binaries: %s", strings.Join(parts, ", "))
}

// waitHPASteady waits until the HPA wants maxReplicas and reads an average
// requests_per_second per pod near its target.
func waitHPASteady(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(stack.Namespace).Get(ctx, stack.AppName, metav1.GetOptions{})
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
		d, err := client.AppsV1().Deployments(stack.Namespace).Get(ctx, stack.AppName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods, err := client.CoreV1().Pods(stack.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + stack.AppName})
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
func checkPacked(t *testing.T, s *stack.Stack) string {
	t.Helper()
	pods, err := s.Client.CoreV1().Pods(stack.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + stack.AppName})
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
		if !strings.HasPrefix(nodeModel(s, node), "V100") {
			t.Errorf("model pods %v on %s (%s), want V100 nodes only", ps, node, nodeModel(s, node))
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

// nodeModel is the GPU model of the stack's node name ("" for none, e.g. a
// pod not bound yet).
func nodeModel(s *stack.Stack, name string) string {
	if n := s.Node(name); n != nil {
		return n.Model
	}
	return ""
}
