// Package attribution tells the gpu-agent which Kubernetes pod a GPU, or a
// process running on a GPU, belongs to, so that GPU metrics can carry pod
// labels.
//
// There are two attribution chains, one per way a GPU is handed to pods.
//
// Exclusive GPUs (a pod requests whole nvidia.com/gpu devices): the kubelet
// knows which device IDs it gave to which container. PodResourcesClient asks
// the kubelet PodResources API (v1 List, on the pod-resources unix socket)
// and keeps a map from device ID to PodRef; for nvidia.com/gpu the device IDs
// are GPU UUIDs ("GPU-8f3c..."), which is what NVML reports for a device, so
// the agent looks up each GPU by its UUID. The map is refreshed periodically
// and is considered empty once it is older than its maximum staleness, so the
// agent never labels a GPU with a pod that may be gone.
//
// Shared GPUs (several pods on one GPU: fractional gpufleet.io/gpu-milli pods,
// or device-plugin time-slicing where one GPU is advertised as several
// replicas): no device ID names a single pod, so attribution is per process.
// NVML lists the processes running on a GPU with their host PIDs; for each PID
// ProcResolver reads /proc/<pid>/cgroup from the host's /proc (the DaemonSet
// runs with hostPID and mounts the host /proc, e.g. at /host/proc), and
// PodFromCgroup extracts the pod UID and container ID from the cgroup path
// that the kubelet and the container runtime created. PodIndex, an informer
// on the pods bound to this node, turns the pod UID into namespace and name,
// and the container ID into the container name.
//
//	exclusive: NVML GPU UUID -> PodResourcesClient.Lookup -> PodRef
//	shared:    NVML GPU -> process PIDs -> ProcResolver.Resolve -> pod UID,
//	           container ID -> PodIndex.ByUID -> PodRef
//
// The package talks to NVML only through the agent: it takes UUIDs and PIDs,
// never calls NVML itself.
package attribution
