// Package kubectlgpufleet is the kubectl plugin `kubectl gpufleet`
// (cmd/kubectl-gpufleet): what a cluster admin asks of gpufleet's GPUs.
//
//   - nodes: per node and per GPU, the model, the milli-GPU allocated
//     (whole GPUs and shares, from each pod's gpufleet.io/gpu-indices), the
//     pods on each GPU, what is free, and the node's GPU utilization from
//     the custom metrics API when it is served;
//   - explain POD: where a GPU pod runs and on which GPUs, or why it is
//     pending (the scheduler's reasons) and where it would fit;
//   - top pods|nodes: GPU utilization and memory, requests/s and queue
//     depth from the custom metrics API;
//   - cost: the report of `gpufleet cost` (package cost/costcmd).
//
// Its flags are kubectl's (k8s.io/cli-runtime): --kubeconfig, --context,
// -n and the rest behave as they do for kubectl.
package kubectlgpufleet
