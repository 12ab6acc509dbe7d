package kubectlgpufleet

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/gpufleet/gpufleet/pkg/cost/costcmd"
)

// NewCommand returns `kubectl gpufleet` with kubectl's connection flags.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	cmd := &cobra.Command{
		Use:           "kubectl-gpufleet",
		Short:         "gpufleet's GPUs: who holds which share of which GPU, and why a GPU pod is pending",
		SilenceUsage:  true,
		SilenceErrors: true, // main prints the error once, as kubectl does
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl gpufleet"},
	}
	flags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newNodesCommand(flags, streams), newExplainCommand(flags, streams), newTopCommand(flags, streams))
	// The same report as `gpufleet cost`; its own --kubeconfig and
	// --insecure-skip-tls-verify (same meaning) take the place of kubectl's.
	cost := costcmd.NewCommand()
	cost.SetOut(streams.Out)
	cost.SetErr(streams.ErrOut)
	cmd.AddCommand(cost)
	return cmd
}
