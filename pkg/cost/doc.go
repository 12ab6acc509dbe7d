// Package cost accounts GPU time to the pods, workloads, namespaces, nodes
// and GPU models that hold it, prices it and says what to change.
//
// The metrics adapter feeds a Ledger one Snapshot per sampling period: the
// GPU pods it knows (allocation, the gpu-agent's per-pod utilization,
// request rate) and the GPU nodes (capacity, per-GPU allocation). The Ledger
// keeps counters for Prometheus (Collector) and per-minute history for a
// JSON report over any range it still holds (Usage, Report, Handler).
// BuildReport groups and prices a Usage, whether it comes from a Ledger, from
// the adapter's /cost/report endpoint or from a Prometheus server
// (PromReader), and adds recommendations.
//
// Accounting rules (docs/cost.md has the full story):
//
//   - Allocation does not depend on sampling. A pod holds AllocatedGPUs from
//     its Start until it is last seen (or until End, when the adapter knows
//     when it stopped). A pod first seen by a Ledger is billed from its
//     Start, so a restarted adapter re-derives the allocated time it missed:
//     nothing is lost and nothing is counted twice, and the allocation
//     counters keep growing across restarts. A pod that vanishes is billed
//     until its last observation; if it reappears, the time in between is
//     billed too (it held its GPUs all along).
//   - Use is integrated with the trapezoid rule between consecutive
//     snapshots that are at most MaxGap apart and both carry the pod's
//     utilization. Longer gaps are unobserved time: no use, no idle, and they
//     appear as unobserved seconds in reports. Efficiency is used GPU time
//     over the allocated GPU time of the same observed intervals, so a gap
//     never dilutes it.
//   - Idle (unallocated) GPU time of a node over an observed interval is its
//     GPU count times the interval minus the GPU time its pods held in that
//     interval, never negative.
//   - Fractional GPUs (gpufleet.io/gpu-milli) are billed by their share:
//     300 milli for an hour is 0.3 GPU-hours.
package cost
