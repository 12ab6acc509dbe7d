package cost

import "time"

// Snapshot is what the metrics adapter knows about GPU pods and GPU nodes at
// one instant. The adapter passes one to Ledger.Observe every sampling
// period.
type Snapshot struct {
	// Time is when the snapshot was taken. Snapshots must come in order.
	Time time.Time
	// Pods are the pods holding GPUs (whole or shares). Pods without GPUs
	// are ignored.
	Pods []PodUsage
	// Nodes are the GPU nodes.
	Nodes []NodeGPUs
}

// Workload kinds a pod is attributed to, through its controller owner
// references (a ReplicaSet's pods count for its Deployment).
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindJob         = "Job"
	KindDaemonSet   = "DaemonSet"
	// KindPod is a pod without a controller; its workload is the pod.
	KindPod = "Pod"
)

// PodUsage is one GPU pod in a Snapshot.
type PodUsage struct {
	Namespace string
	Name      string
	// UID identifies the pod across snapshots; Namespace/Name stands in when
	// it is empty.
	UID string
	// WorkloadKind and Workload name the owning workload: Deployment,
	// StatefulSet, Job, DaemonSet or Pod (no controller, Workload = Name).
	WorkloadKind string
	Workload     string
	// Node is the node the pod runs on.
	Node string
	// Model is the node's GPU model as named in package gpumodel (e.g.
	// V100M16).
	Model string
	// Spot says the node's capacity is spot or preemptible.
	Spot bool
	// Start is status.startTime. Zero means unknown: the pod is then billed
	// from the first snapshot that carries it.
	Start time.Time
	// End is when the pod stopped holding its GPUs (it finished or was
	// deleted), when the adapter knows it; zero while it runs. A pod with
	// End set is billed until End and not after, even if later snapshots
	// still carry it.
	End time.Time
	// AllocatedGPUs is whole GPUs plus gpufleet.io/gpu-milli / 1000.
	AllocatedGPUs float64
	// GPUIndices are the node's GPUs the pod holds
	// (gpufleet.io/gpu-indices), when known.
	GPUIndices []int
	// UsedGPUs is the sum over the pod's GPUs of the gpu-agent's per-pod
	// utilization ratio (gpufleet_pod_gpu_utilization_ratio): busy GPUs.
	// Valid when UsedKnown.
	UsedGPUs  float64
	UsedKnown bool
	// RequestsPerSecond is the pod's request rate (requests_per_second),
	// valid when RPSKnown.
	RequestsPerSecond float64
	RPSKnown          bool
}

// NodeGPUs is one GPU node in a Snapshot.
type NodeGPUs struct {
	Node  string
	Model string
	Spot  bool
	// GPUs is the node's GPU count.
	GPUs int
	// PerGPUAllocatedMilli is, per GPU index, the milli-GPUs that pods hold
	// (the scheduler's ledger view: 1000 for a whole GPU). When its length
	// is not GPUs, the Ledger derives it from the pods' GPUIndices.
	PerGPUAllocatedMilli []int64
}

// Capacity types, the values of the capacity_type label.
const (
	CapacityOnDemand = "on-demand"
	CapacitySpot     = "spot"
)

// CapacityType returns the capacity_type label value for spot.
func CapacityType(spot bool) string {
	if spot {
		return CapacitySpot
	}
	return CapacityOnDemand
}

// Key is the finest grain of accounting: a workload's pods on one node.
type Key struct {
	Namespace    string `json:"namespace"`
	WorkloadKind string `json:"workloadKind"`
	Workload     string `json:"workload"`
	Node         string `json:"node"`
	Model        string `json:"model"`
	Spot         bool   `json:"spot"`
}

// WorkloadRef names a workload.
type WorkloadRef struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// String returns namespace/Kind/name.
func (w WorkloadRef) String() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// WorkloadRef returns the workload of k.
func (k Key) WorkloadRef() WorkloadRef {
	return WorkloadRef{Namespace: k.Namespace, Kind: k.WorkloadKind, Name: k.Workload}
}
