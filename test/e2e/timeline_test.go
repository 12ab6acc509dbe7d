package e2e

import (
	"fmt"
	"math"
	"strings"

	"github.com/gpufleet/gpufleet/internal/stack"
)

// timeline prints one line per sample: phase, replicas, load, the adapter's
// requests_per_second, each node's gpu_utilization and the model pods per
// node.
func timeline(nodes []string, samples []stack.Sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %-10s %-9s %-9s %-12s %-*s %s\n", "t", "phase", "replicas", "load rps", "adapter rps",
		len(nodes)*9, "gpu_utilization "+strings.Join(nodes, "/"), "pods per node")
	for _, s := range samples {
		var u, pods []string
		for _, v := range s.Utilization {
			if math.IsNaN(v) {
				u = append(u, "-")
			} else {
				u = append(u, fmt.Sprintf("%.4f", v))
			}
		}
		for i, gpus := range s.PodGPUs {
			if len(gpus) > 0 {
				pods = append(pods, fmt.Sprintf("%s:%d", nodes[i], len(gpus)))
			}
		}
		rps := "-"
		if !math.IsNaN(s.ServedRPS) {
			rps = fmt.Sprintf("%.1f", s.ServedRPS)
		}
		fmt.Fprintf(&b, "t+%-5.0f %-10s %-9s %-9.1f %-12s %-*s %s\n", s.At.Seconds(), s.Label,
			fmt.Sprintf("%d/%d", s.Ready, s.Replicas), s.SentRPS, rps, len(nodes)*9, strings.Join(u, " "), strings.Join(pods, " "))
	}
	return b.String()
}
