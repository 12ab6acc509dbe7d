// Command scheduler-plugin is kube-scheduler with gpufleet's GPUPack plugin
// registered. Run it as a second scheduler (profiles with schedulerName
// gpufleet-scheduler) or as the only one; see pkg/plugins/gpupack/README.md.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	_ "github.com/gpufleet/gpufleet/apis/config/scheme" // GPUPackArgs in pluginConfig
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand(app.WithPlugin(gpupack.Name, gpupack.New))))
}
