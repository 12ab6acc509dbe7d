// Package e2e holds the end-to-end test (`make e2e`; it also runs in
// `make test` as TestIntegrationE2EAutoscaledServing): the whole system on
// a local control plane, with the real binaries of bin/ (built with
// `go build` when missing; present ones are used as they are, so `make e2e`
// runs `make build` first).
//
// internal/stack runs the system (`gpufleet demo` runs the same): etcd,
// kube-apiserver and kube-controller-manager (Deployments, ReplicaSets, the
// HPA), bin/scheduler-plugin as gpufleet-scheduler, bin/metrics-adapter
// registered as the custom and external metrics APIs, and simulated V100
// and T4 nodes whose pods internal/noderunner runs as real programs: a
// bin/gpu-agent per node on its simulated GPUs, a bin/inference-server per
// model pod on its own loopback address, reporting its batches as busy time
// of its GPUs. internal/loadgen sends real v2 inference requests to the
// ready pods it watches. This package drives the load and checks what the
// system does with it.
package e2e
