// Command gpusim replays a GPU cluster trace through the real kube-scheduler
// framework with the GPUPack plugin and reports GPU allocation and
// fragmentation per placement policy. See docs/gpusim.md.
package main

import (
	"os"

	"github.com/gpufleet/gpufleet/cmd/gpusim/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
