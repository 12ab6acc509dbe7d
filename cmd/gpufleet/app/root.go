// Package app builds the gpufleet command.
package app

import (
	"github.com/spf13/cobra"

	"github.com/gpufleet/gpufleet/pkg/cost/costcmd"
)

// NewCommand returns the gpufleet root command.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "gpufleet",
		Short:         "gpufleet: GPU model serving on Kubernetes, packed, autoscaled and accounted",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.AddCommand(newClusterCommand())
	cmd.AddCommand(costcmd.NewCommand())
	cmd.AddCommand(newDemoCommand())
	cmd.AddCommand(newValidateCommand())
	return cmd
}
