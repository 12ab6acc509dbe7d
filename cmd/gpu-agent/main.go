// Command gpu-agent runs on every GPU node: it samples the GPUs through
// NVML, attributes their use to pods, serves Prometheus metrics and labels
// its Node with the GPU inventory.
package main

import (
	"os"

	"github.com/gpufleet/gpufleet/cmd/gpu-agent/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
