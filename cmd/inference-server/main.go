// Command inference-server serves models of a model repository over the
// Open Inference Protocol v2 (KServe / Triton REST), with dynamic batching,
// on the CPU or a CUDA GPU.
package main

import (
	"os"

	"github.com/gpufleet/gpufleet/cmd/inference-server/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
