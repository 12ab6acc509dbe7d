package cost

import (
	"cmp"
	"slices"
	"time"
)

// Usage is the GPU time accounted over [From, To): what a Report is built
// from. A Ledger, the adapter's report endpoint and a Prometheus server
// (PromReader) all give one.
type Usage struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// ObservedSeconds is the part of the range covered by snapshots at most
	// MaxGap apart: the time over which use and idle capacity are known.
	ObservedSeconds float64 `json:"observedSeconds"`
	// Entries hold each workload's GPU time per node.
	Entries []Entry `json:"entries"`
	// Nodes hold each node's unallocated GPU time.
	Nodes []NodeIdle `json:"nodes"`
	// Peaks are the workloads' 95th percentile per-minute GPU use per
	// replica, where known.
	Peaks []UsePeak `json:"peaks,omitempty"`
	// GPUs is the per-GPU allocation of the nodes at GPUsAt (the range's
	// end), where known; recommendations about fragmentation read it.
	GPUs   []NodeAllocation `json:"gpus,omitempty"`
	GPUsAt time.Time        `json:"gpusAt,omitzero"`
	// Notes say what the source could not cover (e.g. a range clipped to
	// the history held).
	Notes []string `json:"notes,omitempty"`
}

// Entry is the GPU time of one Key.
type Entry struct {
	Key
	Accum
}

// Accum is accounted time, in seconds. GPU-seconds count a 300-milli share
// held for 10 s as 3 GPU-seconds.
type Accum struct {
	// AllocatedGPUSeconds is GPU time held (allocated) by the pods.
	AllocatedGPUSeconds float64 `json:"allocatedGPUSeconds"`
	// UsedGPUSeconds is busy GPU time, from the gpu-agent's per-pod
	// utilization, over observed intervals.
	UsedGPUSeconds float64 `json:"usedGPUSeconds"`
	// AllocatedObservedGPUSeconds is the allocated GPU time of the
	// intervals over which use was observed: efficiency is UsedGPUSeconds
	// over it.
	AllocatedObservedGPUSeconds float64 `json:"allocatedObservedGPUSeconds"`
	// PodSeconds is the time the pods existed (replica-seconds).
	PodSeconds float64 `json:"podSeconds"`
	// Requests is the requests served, integrated from the request rate.
	Requests float64 `json:"requests"`
	// RequestsObservedSeconds is the pod-seconds over which the request
	// rate was known.
	RequestsObservedSeconds float64 `json:"requestsObservedSeconds"`
}

func (a *Accum) add(b Accum) {
	a.AllocatedGPUSeconds += b.AllocatedGPUSeconds
	a.UsedGPUSeconds += b.UsedGPUSeconds
	a.AllocatedObservedGPUSeconds += b.AllocatedObservedGPUSeconds
	a.PodSeconds += b.PodSeconds
	a.Requests += b.Requests
	a.RequestsObservedSeconds += b.RequestsObservedSeconds
}

// NodeKey names a node and what its GPUs are.
type NodeKey struct {
	Node  string `json:"node"`
	Model string `json:"model"`
	Spot  bool   `json:"spot"`
}

// NodeIdle is a node's unallocated GPU time over observed intervals.
type NodeIdle struct {
	NodeKey
	UnallocatedGPUSeconds float64 `json:"unallocatedGPUSeconds"`
}

// UsePeak is a workload's 95th percentile, over the minutes of the range,
// of its mean GPU use per replica (busy GPUs).
type UsePeak struct {
	WorkloadRef
	P95UsedGPUsPerReplica float64 `json:"p95UsedGPUsPerReplica"`
}

// NodeAllocation is the milli-GPUs held on each GPU of a node.
type NodeAllocation struct {
	NodeKey
	PerGPUAllocatedMilli []int64 `json:"perGPUAllocatedMilli"`
}

// WindowSeconds is the length of the range.
func (u *Usage) WindowSeconds() float64 { return u.To.Sub(u.From).Seconds() }

// sortUsage puts a Usage's lists in a stable order.
func sortUsage(u *Usage) {
	slices.SortFunc(u.Entries, func(a, b Entry) int { return compareKeys(a.Key, b.Key) })
	slices.SortFunc(u.Nodes, func(a, b NodeIdle) int { return compareNodeKeys(a.NodeKey, b.NodeKey) })
	slices.SortFunc(u.GPUs, func(a, b NodeAllocation) int { return compareNodeKeys(a.NodeKey, b.NodeKey) })
	slices.SortFunc(u.Peaks, func(a, b UsePeak) int { return cmp.Compare(a.String(), b.String()) })
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.WorkloadKind, b.WorkloadKind),
		cmp.Compare(a.Workload, b.Workload),
		cmp.Compare(a.Node, b.Node),
		cmp.Compare(a.Model, b.Model),
		compareBool(a.Spot, b.Spot),
	)
}

func compareNodeKeys(a, b NodeKey) int {
	return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Model, b.Model), compareBool(a.Spot, b.Spot))
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}
