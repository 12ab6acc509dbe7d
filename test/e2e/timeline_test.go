package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"

	"github.com/gpufleet/gpufleet/internal/loadgen"
)

// sample is the system's state at one moment.
type sample struct {
	at             time.Duration // since the timeline started
	phase          string
	replicas       int32   // the Deployment's desired replicas (the HPA's decision)
	ready          int32   // its ready replicas
	sentRPS        float64 // requests the load generator sent per second since the previous sample
	deploymentRPS  float64 // the Deployment's requests_per_second through the custom metrics API; NaN if none
	utilization    []float64
	podsPerNodeStr string
}

// timeline samples the Deployment, the load and every node's
// gpu_utilization through the custom metrics API once a second, and keeps
// the node of every model pod it has seen.
type timeline struct {
	client kubernetes.Interface
	cm     cmclient.CustomMetricsClient
	load   *loadgen.Generator
	nodes  []string
	start  time.Time

	mu        sync.Mutex
	phase     string
	samples   []sample
	podNodes  map[string]string // model pod -> node, every pod ever seen bound
	lastSent  int64
	lastStamp time.Time
}

func newTimeline(client kubernetes.Interface, cm cmclient.CustomMetricsClient, load *loadgen.Generator, nodes []string) *timeline {
	now := time.Now()
	return &timeline{client: client, cm: cm, load: load, nodes: nodes, start: now, lastStamp: now, phase: "idle", podNodes: map[string]string{}}
}

// setPhase names what the test does from now on (printed with each sample).
func (tl *timeline) setPhase(p string) {
	tl.mu.Lock()
	tl.phase = p
	tl.mu.Unlock()
}

// run samples every second until ctx ends.
func (tl *timeline) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			tl.sample(ctx)
		}
	}
}

func (tl *timeline) sample(ctx context.Context) {
	now := time.Now()
	s := sample{at: now.Sub(tl.start), deploymentRPS: math.NaN()}
	if d, err := tl.client.AppsV1().Deployments(namespace).Get(ctx, appName, metav1.GetOptions{}); err == nil {
		s.replicas, s.ready = *d.Spec.Replicas, d.Status.ReadyReplicas
	}
	if v, err := tl.cm.NamespacedMetrics(namespace).GetForObject(schema.GroupKind{Group: "apps", Kind: "Deployment"}, appName, "requests_per_second", labels.Everything()); err == nil {
		s.deploymentRPS = v.Value.AsApproximateFloat64()
	}
	for _, n := range tl.nodes {
		s.utilization = append(s.utilization, tl.nodeUtilization(n))
	}
	perNode := map[string]int{}
	pods, err := tl.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + appName})
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if err == nil {
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				tl.podNodes[p.Name] = p.Spec.NodeName
				perNode[p.Spec.NodeName]++
			}
		}
	}
	var parts []string
	for _, n := range tl.nodes {
		if perNode[n] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", n, perNode[n]))
		}
	}
	s.podsPerNodeStr = strings.Join(parts, " ")
	sent := tl.load.Sent()
	s.sentRPS = float64(sent-tl.lastSent) / now.Sub(tl.lastStamp).Seconds()
	tl.lastSent, tl.lastStamp = sent, now
	s.phase = tl.phase
	tl.samples = append(tl.samples, s)
}

// nodeUtilization is the node's gpu_utilization (mean over its GPUs, 0..1)
// as the HPA would read it, or NaN if the adapter has no current value.
func (tl *timeline) nodeUtilization(node string) float64 {
	v, err := tl.cm.RootScopedMetrics().GetForObject(schema.GroupKind{Kind: "Node"}, node, "gpu_utilization", labels.Everything())
	if err != nil {
		return math.NaN()
	}
	return v.Value.AsApproximateFloat64()
}

// maxUtilization is the highest gpu_utilization sampled for node.
func (tl *timeline) maxUtilization(node string) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := 0.0
	for _, s := range tl.samples {
		for i, n := range tl.nodes {
			if n == node && !math.IsNaN(s.utilization[i]) {
				m = math.Max(m, s.utilization[i])
			}
		}
	}
	return m
}

// nodesSeen returns the node of every model pod seen bound.
func (tl *timeline) nodesSeen() map[string]string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make(map[string]string, len(tl.podNodes))
	for p, n := range tl.podNodes {
		out[p] = n
	}
	return out
}

// String prints one line per sample.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %-10s %-9s %-9s %-12s %-*s %s\n", "t", "phase", "replicas", "load rps", "adapter rps",
		len(tl.nodes)*9, "gpu_utilization "+strings.Join(tl.nodes, "/"), "pods per node")
	for _, s := range tl.samples {
		var u []string
		for _, v := range s.utilization {
			if math.IsNaN(v) {
				u = append(u, "-")
			} else {
				u = append(u, fmt.Sprintf("%.4f", v))
			}
		}
		rps := "-"
		if !math.IsNaN(s.deploymentRPS) {
			rps = fmt.Sprintf("%.1f", s.deploymentRPS)
		}
		fmt.Fprintf(&b, "t+%-5.0f %-10s %-9s %-9.1f %-12s %-*s %s\n", s.at.Seconds(), s.phase,
			fmt.Sprintf("%d/%d", s.ready, s.replicas), s.sentRPS, rps, len(tl.nodes)*9, strings.Join(u, " "), s.podsPerNodeStr)
	}
	return b.String()
}
