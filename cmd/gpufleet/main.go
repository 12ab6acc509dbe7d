// Command gpufleet is the admin CLI: a local control plane for trying
// gpufleet out (`gpufleet cluster up`), and later cost reports and the demo.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/gpufleet/gpufleet/cmd/gpufleet/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
