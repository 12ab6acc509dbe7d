package cost

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (documented in docs/cost.md). Counters are in seconds (GPU
// time in GPU-seconds: a 300-milli share for 10 s is 3).
const (
	MetricAllocatedSeconds         = "gpufleet_cost_gpu_allocated_seconds_total"
	MetricUsedSeconds              = "gpufleet_cost_gpu_used_seconds_total"
	MetricAllocatedObservedSeconds = "gpufleet_cost_gpu_allocated_observed_seconds_total"
	MetricPodSeconds               = "gpufleet_cost_pod_seconds_total"
	MetricRequests                 = "gpufleet_cost_requests_total"
	MetricRequestsObservedSeconds  = "gpufleet_cost_requests_observed_seconds_total"
	MetricUnallocatedSeconds       = "gpufleet_cost_gpu_unallocated_seconds_total"
	MetricObservedSeconds          = "gpufleet_cost_observed_seconds_total"
	MetricAllocatedRatio           = "gpufleet_cost_gpu_allocated_ratio"
)

// Label names.
var (
	podLabels  = []string{"namespace", "workload_kind", "workload", "pod", "node", "model", "capacity_type"}
	nodeLabels = []string{"node", "model", "capacity_type"}
	gpuLabels  = []string{"node", "model", "capacity_type", "gpu"}
)

var (
	descAllocated = prometheus.NewDesc(MetricAllocatedSeconds,
		"GPU time allocated to the pod (whole GPUs and gpu-milli shares by their share), from its start; derived from the start time, so it keeps growing across adapter restarts.",
		podLabels, nil)
	descUsed = prometheus.NewDesc(MetricUsedSeconds,
		"Busy GPU time of the pod (gpu-agent per-pod utilization integrated with the trapezoid rule over observed intervals).",
		podLabels, nil)
	descAllocatedObserved = prometheus.NewDesc(MetricAllocatedObservedSeconds,
		"GPU time allocated to the pod over the intervals in which its use was observed: the denominator of efficiency.",
		podLabels, nil)
	descPodSeconds = prometheus.NewDesc(MetricPodSeconds,
		"Time the pod existed, from its start (replica-seconds).",
		podLabels, nil)
	descRequests = prometheus.NewDesc(MetricRequests,
		"Requests the pod served, integrated from its request rate over observed intervals.",
		podLabels, nil)
	descRequestsObserved = prometheus.NewDesc(MetricRequestsObservedSeconds,
		"Time over which the pod's request rate was observed.",
		podLabels, nil)
	descUnallocated = prometheus.NewDesc(MetricUnallocatedSeconds,
		"GPU time of the node that no pod held (idle capacity), over observed intervals.",
		nodeLabels, nil)
	descObserved = prometheus.NewDesc(MetricObservedSeconds,
		"Time covered by cost snapshots at most the maximum gap apart.",
		nil, nil)
	descAllocatedRatio = prometheus.NewDesc(MetricAllocatedRatio,
		"Share of the GPU that pods hold (0..1), at the newest snapshot.",
		gpuLabels, nil)
)

// Collector returns a prometheus.Collector of the Ledger's counters: per
// pod, per node and overall. A pod's series stay for the dead pod TTL after
// it was last seen; when a pod name is reused, the newest pod's series
// replace the old one's.
func (l *Ledger) Collector() prometheus.Collector { return (*collector)(l) }

type collector Ledger

var _ prometheus.Collector = &collector{}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAllocated, descUsed, descAllocatedObserved, descPodSeconds,
		descRequests, descRequestsObserved, descUnallocated, descObserved, descAllocatedRatio} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	l := (*Ledger)(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	newest := map[[7]string]*podState{}
	for _, st := range l.pods {
		k := [7]string{st.key.Namespace, st.key.WorkloadKind, st.key.Workload, st.name, st.key.Node, st.key.Model, CapacityType(st.key.Spot)}
		if old := newest[k]; old == nil || st.lastSeen.After(old.lastSeen) ||
			(st.lastSeen.Equal(old.lastSeen) && st.accountedTo.After(old.accountedTo)) {
			newest[k] = st
		}
	}
	for k, st := range newest {
		lv := k[:]
		for _, m := range []struct {
			d *prometheus.Desc
			v float64
		}{
			{descAllocated, st.acc.AllocatedGPUSeconds},
			{descUsed, st.acc.UsedGPUSeconds},
			{descAllocatedObserved, st.acc.AllocatedObservedGPUSeconds},
			{descPodSeconds, st.acc.PodSeconds},
			{descRequests, st.acc.Requests},
			{descRequestsObserved, st.acc.RequestsObservedSeconds},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v, lv...)
		}
	}
	for _, ns := range l.nodes {
		capacity := CapacityType(ns.key.Spot)
		ch <- prometheus.MustNewConstMetric(descUnallocated, prometheus.CounterValue, ns.unallocated, ns.key.Node, ns.key.Model, capacity)
		if !ns.lastSeen.Equal(l.last) {
			continue
		}
		for i, m := range ns.perGPU {
			ch <- prometheus.MustNewConstMetric(descAllocatedRatio, prometheus.GaugeValue, min(max(float64(m)/1000, 0), 1),
				ns.key.Node, ns.key.Model, capacity, strconv.Itoa(i))
		}
	}
	ch <- prometheus.MustNewConstMetric(descObserved, prometheus.CounterValue, l.observed)
}
