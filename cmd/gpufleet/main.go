// Command gpufleet is the admin CLI: a local control plane for trying
// gpufleet out (`gpufleet cluster up`), GPU cost reports (`gpufleet cost`)
// and the demo (`gpufleet demo`).
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/gpufleet/gpufleet/cmd/gpufleet/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
