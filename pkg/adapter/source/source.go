// Package source defines the metrics the gpufleet metrics adapter serves and
// the interface of the backends that compute them: the embedded scraper
// (package embedded) and a Prometheus server (package promsource).
package source

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Scope says which objects a metric describes and where its series live.
type Scope int

const (
	// ScopePod: series exported by the pod itself (inference servers).
	ScopePod Scope = iota
	// ScopePodOnAgent: per-pod series exported by the gpu-agent of the pod's
	// node, labelled with the pod's namespace and name.
	ScopePodOnAgent
	// ScopeNode: per-GPU series exported by a node's gpu-agent.
	ScopeNode
)

// Kind says how a metric's series become one value.
type Kind int

const (
	// Rate is the per-second increase of a counter, summed over series.
	Rate Kind = iota
	// Sum is the sum of gauge values.
	Sum
	// Mean is the mean of gauge values (e.g. utilization over a pod's GPUs).
	Mean
)

// Metric is one metric of the custom metrics API.
type Metric struct {
	// Name is the name HPAs use, e.g. "requests_per_second".
	Name string
	// Series is the Prometheus metric it is computed from.
	Series string
	Scope  Scope
	Kind   Kind
}

// Custom metrics API names (what HPAs name).
const (
	RequestsPerSecond   = "requests_per_second"
	GPUUtilization      = "gpu_utilization"
	GPUMemoryUsedBytes  = "gpu_memory_used_bytes"
	InferenceQueueDepth = "inference_queue_depth"
	// InferenceInputDrift and InferenceOutputDrift are the inference
	// server's drift PSIs, averaged over the series the metric selector
	// matches: select one feature (feature=area_m2) or output for its own.
	InferenceInputDrift  = "inference_input_drift"
	InferenceOutputDrift = "inference_output_drift"
)

// PodMetrics are the metrics of pods, by name.
var PodMetrics = map[string]Metric{
	RequestsPerSecond:    {Name: RequestsPerSecond, Series: "inference_requests_total", Scope: ScopePod, Kind: Rate},
	InferenceQueueDepth:  {Name: InferenceQueueDepth, Series: "inference_queue_depth", Scope: ScopePod, Kind: Sum},
	InferenceInputDrift:  {Name: InferenceInputDrift, Series: "inference_input_drift", Scope: ScopePod, Kind: Mean},
	InferenceOutputDrift: {Name: InferenceOutputDrift, Series: "inference_output_drift", Scope: ScopePod, Kind: Mean},
	GPUUtilization:       {Name: GPUUtilization, Series: "gpufleet_pod_gpu_utilization_ratio", Scope: ScopePodOnAgent, Kind: Mean},
	GPUMemoryUsedBytes:   {Name: GPUMemoryUsedBytes, Series: "gpufleet_pod_gpu_memory_used_bytes", Scope: ScopePodOnAgent, Kind: Sum},
}

// NodeMetrics are the metrics of nodes, by name.
var NodeMetrics = map[string]Metric{
	GPUUtilization:     {Name: GPUUtilization, Series: "gpufleet_gpu_utilization_ratio", Scope: ScopeNode, Kind: Mean},
	GPUMemoryUsedBytes: {Name: GPUMemoryUsedBytes, Series: "gpufleet_gpu_memory_used_bytes", Scope: ScopeNode, Kind: Sum},
}

// SeriesNames lists every Prometheus metric the catalog reads: what a
// scraper must keep.
func SeriesNames() []string {
	var names []string
	for _, m := range PodMetrics {
		names = append(names, m.Series)
	}
	for _, m := range NodeMetrics {
		names = append(names, m.Series)
	}
	return names
}

// Pod is a pod a metric is asked for.
type Pod struct {
	Namespace string
	Name      string
	// Node is the node the pod runs on; ScopePodOnAgent metrics need it.
	Node string
}

// Sample is one metric value.
type Sample struct {
	Value float64
	// Timestamp is when the value was true (the newest sample used).
	Timestamp time.Time
	// Window is the time the value covers (rates); zero for gauges.
	Window time.Duration
}

// Source computes metric values. A result slice has one entry per asked
// object; ok[i] is false where object i has no value now (unknown, not
// scraped recently, its last scrape failed, or no series matched). A source
// never reports a stale value as a current one.
//
// sel selects series by their labels (e.g. model="bert"); nil or empty
// selects every series.
type Source interface {
	PodValues(ctx context.Context, m Metric, pods []Pod, sel labels.Selector) (values []Sample, ok []bool, err error)
	NodeValues(ctx context.Context, m Metric, nodes []string, sel labels.Selector) (values []Sample, ok []bool, err error)
}
