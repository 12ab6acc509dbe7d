package app

import (
	"context"
	"flag"
	"net"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/inference/router"
	"github.com/gpufleet/gpufleet/pkg/inference/serving"
)

// NewCommand returns the model-router command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:          "model-router",
		Short:        "Route Open Inference Protocol v2 requests across model Deployments",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			c, err := o.Complete()
			if err != nil {
				return err
			}
			return serving.ListenAndRun(o.Listen, func(ctx context.Context, l net.Listener) error { return Run(ctx, c, l) })
		},
	}
	o.AddFlags(cmd.Flags())
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	cmd.Flags().AddGoFlagSet(logFlags)
	return cmd
}

// Run serves on l until ctx ends, then drains gracefully.
func Run(ctx context.Context, c *Config, l net.Listener) error {
	logger := klog.FromContext(ctx)
	r, err := router.New(c.Router, c.Rules)
	if err != nil {
		return err
	}
	bg, cancelBG := context.WithCancel(klog.NewContext(context.Background(), logger))
	defer cancelBG()
	go func() { _ = r.Run(bg) }()
	if c.Options.ReloadInterval > 0 {
		go r.WatchRulesFile(bg, c.Options.Rules, c.Options.Namespace, c.Options.ReloadInterval, c.RulesData)
	}
	logger.Info("Routing", "address", l.Addr().String(), "policy", c.Router.Policy, "routes", len(c.Rules.Routes), "backends", len(c.Rules.Backends))

	return serving.Serve(ctx, l, r.Handler(), r, c.Options.ShutdownDelay, c.Options.ShutdownTimeout)
}
