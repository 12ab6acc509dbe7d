// Command metrics-adapter serves custom.metrics.k8s.io and
// external.metrics.k8s.io to the HorizontalPodAutoscaler: request rates,
// queue depths and GPU load of pods, nodes and workloads, scraped every
// second from the pods and the gpu-agents (or read from Prometheus).
package main

import (
	"os"

	"github.com/gpufleet/gpufleet/cmd/metrics-adapter/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
