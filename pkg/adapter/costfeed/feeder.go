// Package costfeed feeds the metrics adapter's view of the cluster into the
// GPU cost ledger (package cost): every period, a snapshot of the GPU pods
// (allocation, owner, node, model, capacity type, use and request rate from
// the adapter's metric source) and of the GPU nodes.
package costfeed

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// busyGPUs is the sum over a pod's GPUs of its utilization: how many GPUs
// its kernels kept busy. (The public gpu_utilization is the mean.)
var busyGPUs = source.Metric{
	Name:   "busy_gpus",
	Series: source.PodMetrics[source.GPUUtilization].Series,
	Scope:  source.ScopePodOnAgent,
	Kind:   source.Sum,
}

// Feeder observes the cluster into a ledger.
type Feeder struct {
	Cache  *cluster.Cache
	Source source.Source
	Ledger *cost.Ledger
	Period time.Duration
	Now    func() time.Time // default time.Now
}

// Run observes once per period until ctx ends. It starts once the cache has
// synced (an unsynced cache would bill nothing).
func (f *Feeder) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	tick := time.NewTicker(f.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !f.Cache.Synced() {
			continue
		}
		snap := f.Snapshot(ctx)
		if err := f.Ledger.Observe(snap); err != nil {
			logger.Info("GPU cost snapshot partly rejected", "err", err)
		}
	}
}

// Snapshot reads the cluster now.
func (f *Feeder) Snapshot(ctx context.Context) cost.Snapshot {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	snap := cost.Snapshot{Time: now()}
	nodes := map[string]*corev1.Node{}
	for _, n := range f.Cache.NodeObjects() {
		gpus := gpuCount(n)
		if gpus == 0 {
			continue
		}
		nodes[n.Name] = n
		snap.Nodes = append(snap.Nodes, cost.NodeGPUs{
			Node: n.Name, Model: modelOf(n), Spot: cost.SpotFromNodeLabels(n.Labels), GPUs: gpus,
		})
	}
	var refs []source.Pod
	for _, p := range f.Cache.Pods("", nil) {
		if p.Spec.NodeName == "" || p.Status.StartTime == nil {
			continue // never ran: nothing allocated yet
		}
		u := cost.PodUsageFromPod(p, "", "")
		if u.AllocatedGPUs <= 0 {
			continue
		}
		u.WorkloadKind, u.Workload = f.Cache.Owner(p)
		if n := nodes[p.Spec.NodeName]; n != nil {
			u.Model, u.Spot = modelOf(n), cost.SpotFromNodeLabels(n.Labels)
		}
		snap.Pods = append(snap.Pods, u)
		refs = append(refs, source.Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName})
	}
	if len(refs) == 0 {
		return snap
	}
	logger := klog.FromContext(ctx)
	if vals, oks, err := f.Source.PodValues(ctx, busyGPUs, refs, nil); err != nil {
		logger.V(2).Info("No GPU use for cost accounting this period", "err", err)
	} else {
		for i := range snap.Pods {
			snap.Pods[i].UsedGPUs, snap.Pods[i].UsedKnown = vals[i].Value, oks[i] && snap.Pods[i].End.IsZero()
		}
	}
	if vals, oks, err := f.Source.PodValues(ctx, source.PodMetrics[source.RequestsPerSecond], refs, nil); err != nil {
		logger.V(2).Info("No request rates for cost accounting this period", "err", err)
	} else {
		for i := range snap.Pods {
			snap.Pods[i].RequestsPerSecond, snap.Pods[i].RPSKnown = vals[i].Value, oks[i] && snap.Pods[i].End.IsZero()
		}
	}
	return snap
}

func gpuCount(n *corev1.Node) int {
	if q, ok := n.Status.Allocatable[names.ResourceGPU]; ok && q.Value() > 0 {
		return int(q.Value())
	}
	if q, ok := n.Status.Allocatable[names.ResourceGPUMilli]; ok {
		return int(q.Value() / 1000)
	}
	return 0
}

func modelOf(n *corev1.Node) string {
	m, _ := gpumodel.FromNodeLabels(n.Labels)
	return m
}
