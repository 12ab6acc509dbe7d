// Package e2e holds the end-to-end test (`make e2e`; it also runs in
// `make test` as TestIntegrationE2EAutoscaledServing): the whole system on
// a local control plane, with the real binaries of bin/ (built with
// `go build` when missing; present ones are used as they are, so `make e2e`
// runs `make build` first).
//
// How each component runs:
//   - etcd, kube-apiserver and kube-controller-manager (Deployment,
//     ReplicaSet and HPA controllers, HPA sync every second): children of
//     the test through pkg/localcluster.
//   - bin/scheduler-plugin --config: the recommended GPUPack profile
//     (internal/schedtest) as the second scheduler gpufleet-scheduler,
//     leader election off; a child process.
//   - bin/metrics-adapter: a child process registered as the custom and
//     external metrics APIs (internal/adaptertest).
//   - Simulated nodes (two 8-GPU V100 nodes, 16 and 32 GB, and a 4-GPU T4
//     node) have no kubelet: one internal/noderunner Runner per node plays
//     it, each in its own 127.N.0.0/16 block. Its Process workload runs every
//     pod bound to the node as a real program on the pod's address: the
//     node's gpu-agent pod (a pod object with app.kubernetes.io/name=gpu-agent,
//     bound to the node as a DaemonSet's would be, so the adapter scrapes
//     it) runs bin/gpu-agent --nvml=mock on the node's simulation directory;
//     model pods run bin/inference-server --device=cpu, reporting their
//     batches' run time as busy time of the GPUs in their
//     gpufleet.io/gpu-indices annotation, as their pod, to the same
//     directory. A deleted pod is reported not ready first, then its
//     program gets SIGTERM and drains before the pod object goes.
//   - internal/loadgen sends real v2 inference requests, built from the
//     server's model metadata, to the ready pods it watches.
package e2e
