// Package e2e holds the end-to-end tests (`make e2e`; both also run in
// `make test`). Each ends with the line `e2e node=real|simulated
// failed_requests=F scale_up_s=U scale_down_s=D`; make e2e prints the real
// node's last, or the simulated one's where no real node can run.
//
// TestIntegrationE2ERealNode runs on pkg/localcluster's real node: a kubelet,
// containerd and kube-proxy on this machine running gpufleet's own images
// (make images), gpufleet installed with `kubectl apply -k
// manifests/overlays/local`, the model a Deployment of the inference-server
// image whose readiness probe gates its traffic and which drains on the
// kubelet's SIGTERM when the HPA scales down.
//
// TestIntegrationE2EAutoscaledServing runs on simulated nodes, with the real
// binaries of bin/ (built with `go build` when missing; present ones are used
// as they are, so `make e2e` runs `make build` first). internal/stack runs the
// system (`gpufleet demo` runs the same): etcd, kube-apiserver and
// kube-controller-manager (Deployments, ReplicaSets, the HPA),
// bin/scheduler-plugin as gpufleet-scheduler, bin/metrics-adapter registered
// as the custom and external metrics APIs, and simulated V100 and T4 nodes
// whose pods internal/noderunner runs as real programs: a bin/gpu-agent per
// node on its simulated GPUs, a bin/inference-server per model pod on its own
// loopback address, reporting its batches as busy time of its GPUs.
//
// In both, internal/loadgen sends real v2 inference requests through
// bin/model-router (a process beside the control plane), which follows the
// model's ready pods and routes the two models (property-value only on the
// real node), property-value split 90/10 between version 1 and the version
// 2 canary; the tests drive the load, check what the system does with it,
// and that the canary got its share.
package e2e
