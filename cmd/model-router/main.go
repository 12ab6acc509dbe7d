// Command model-router is one Open Inference Protocol v2 endpoint in front
// of many model Deployments: rules pick the model backend, weighted splits
// run canaries, and a queue-aware balancer picks the pod.
package main

import (
	"os"

	"github.com/gpufleet/gpufleet/cmd/model-router/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
