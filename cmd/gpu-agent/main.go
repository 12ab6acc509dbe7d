// Command gpu-agent runs on every GPU node: it samples the GPUs through
// NVML, attributes their use to pods, serves Prometheus metrics and labels
// its Node with the GPU inventory.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/gpufleet/gpufleet/cmd/gpu-agent/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
