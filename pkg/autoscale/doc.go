// Package autoscale replays a request-rate trace through the
// HorizontalPodAutoscaler's own algorithm on a simulated clock and measures
// what a user pays: under-provisioned replica-seconds (demand above ready
// capacity), requests over capacity, replica-hours and GPU-hours.
//
// The pieces, one file each:
//   - trace.go: the two trace formats, gaps and --fill policies;
//   - replicas.go, hpa.go, behavior.go: the HPA controller's decision path
//     (replica calculation with tolerances and unready/missing pods,
//     stabilization windows, scaling policies), ported function by
//     function from k8s.io/kubernetes/pkg/controller/podautoscaler, whose
//     methods read time.Now() and so cannot run on a simulated clock;
//     upstream_test.go checks the port against the upstream code;
//   - pipeline.go: how a rate reaches the HPA (gpufleet's 1 s scrapes or
//     Prometheus' scrape interval and rate range);
//   - startup.go: pod start-up times;
//   - replay.go, report.go, plot.go: the replay loop and its results;
//   - study.go: sweeps, tuning on one part of a trace and comparison of
//     policy families at equal GPU-hours on the rest.
//
// The forecast policy uses package forecast, the code the metrics adapter
// serves requests_per_second_forecast with. See docs/autoscaling.md.
package autoscale
