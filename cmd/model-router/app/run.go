package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/inference/router"
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
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			l, err := net.Listen("tcp", o.Listen)
			if err != nil {
				return err
			}
			return Run(ctx, c, l)
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

	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("Shutting down: readiness off, draining", "delay", c.Options.ShutdownDelay, "timeout", c.Options.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), c.shutdownBudget())
	defer cancel()
	if err := r.Shutdown(shutdownCtx, srv, c.Options.ShutdownDelay); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("Stopped")
	return nil
}
