package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/costfeed"
	"github.com/gpufleet/gpufleet/pkg/adapter/embedded"
	"github.com/gpufleet/gpufleet/pkg/adapter/forecaster"
	"github.com/gpufleet/gpufleet/pkg/adapter/promsource"
	"github.com/gpufleet/gpufleet/pkg/adapter/provider"
	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// NewCommand returns the metrics-adapter command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:          "metrics-adapter",
		Short:        "Serve requests_per_second and GPU load to the HorizontalPodAutoscaler (custom and external metrics APIs)",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return Run(ctx, o)
		},
	}
	o.AddFlags(cmd.Flags())
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	cmd.Flags().AddGoFlagSet(logFlags)
	return cmd
}

// Run serves the metrics APIs until ctx ends.
func Run(ctx context.Context, o *Options) error {
	logger := klog.FromContext(ctx)
	restConfig, err := o.ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the Kubernetes client: %w", err)
	}
	cache, err := cluster.New(client)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	var src source.Source
	if o.PrometheusURL != "" {
		if src, err = newPrometheusSource(o); err != nil {
			return err
		}
		logger.Info("Reading metrics from Prometheus", "url", o.PrometheusURL, "rateWindow", o.PrometheusWindow)
	} else {
		scraper, err := scrape.New(
			scrape.WithInterval(o.ScrapeInterval),
			scrape.WithTimeout(o.ScrapeTimeout),
			scrape.WithMaxConcurrency(o.ScrapeConcurrency),
			scrape.WithRateWindow(o.RateWindow),
			scrape.WithMaxSeriesPerTarget(o.MaxSeriesPerTarget),
			scrape.WithMetrics(source.SeriesNames()...),
		)
		if err != nil {
			return err
		}
		legacyregistry.RawMustRegister(scraper.Collector())
		agents, _ := labels.Parse(o.AgentSelector) // validated
		d := &embedded.Discovery{Cache: cache, Scraper: scraper, AgentSelector: agents}
		g.Go(func() error { return scraper.Run(ctx) })
		g.Go(func() error {
			if err := cache.Start(ctx); err != nil {
				return err
			}
			return d.Run(ctx)
		})
		src = &embedded.Source{Store: scraper.Store()}
		logger.Info("Scraping pods and gpu-agents", "interval", o.ScrapeInterval, "rateWindow", o.RateWindow, "agentSelector", o.AgentSelector)
	}
	if o.PrometheusURL != "" {
		g.Go(func() error { return cache.Start(ctx) })
	}
	ledger, err := newLedger(o)
	if err != nil {
		return err
	}
	legacyregistry.RawMustRegister(ledger.Collector())
	feeder := &costfeed.Feeder{Cache: cache, Source: src, Ledger: ledger, Period: o.CostPeriod}
	g.Go(func() error { return feeder.Run(ctx) })

	var popts []provider.Option
	if o.Forecast {
		rec, err := newRecorder(o, cache, src)
		if err != nil {
			return err
		}
		g.Go(func() error { return rec.Run(ctx) })
		popts = append(popts, provider.WithForecaster(rec))
		logger.Info("Serving requests_per_second_forecast", "defaultHorizon", o.ForecastHorizon, "stateFile", o.ForecastStateFile)
	}
	p := provider.New(cache, src, popts...)
	o.WithCustomMetrics(p)
	o.WithExternalMetrics(p)
	if err := o.startServingCert(ctx, restConfig, client); err != nil {
		return err
	}
	srv, err := o.Server()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	if err := srv.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("gpufleet-informers", func(*http.Request) error {
		if !cache.Synced() {
			return errors.New("pods, workloads and nodes are not listed yet")
		}
		return nil
	})); err != nil {
		return err
	}
	// The cost report, behind the server's delegated authentication and
	// authorization (nonResourceURLs: ["/cost/report"], verbs: ["get"]).
	srv.GenericAPIServer.Handler.NonGoRestfulMux.Handle(cost.ReportPath, ledger.Handler())
	g.Go(func() error { return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx) })
	return g.Wait()
}

func newLedger(o *Options) (*cost.Ledger, error) {
	opts := []cost.Option{cost.WithPeriod(o.CostPeriod), cost.WithRetention(o.CostRetention)}
	if o.CostPrices != "" {
		prices, err := cost.LoadPrices(o.CostPrices)
		if err != nil {
			return nil, fmt.Errorf("--cost-prices: %w", err)
		}
		opts = append(opts, cost.WithPrices(prices))
	}
	ledger, err := cost.NewLedger(opts...)
	if err != nil {
		return nil, fmt.Errorf("GPU cost ledger: %w", err)
	}
	return ledger, nil
}

// newRecorder builds the forecast history, loaded from the state file.
// A file that cannot be read is logged and the history starts empty: a
// forecast then equals the reactive rate until history builds up.
func newRecorder(o *Options, cache *cluster.Cache, src source.Source) (*forecaster.Recorder, error) {
	store, err := forecast.NewStore(o.ForecastConfig, o.ForecastMaxSeries)
	if err != nil {
		return nil, err
	}
	rec := &forecaster.Recorder{Cache: cache, Source: src, Store: store, Period: o.ForecastRecordPeriod,
		DefaultHorizon: o.ForecastHorizon, StateFile: o.ForecastStateFile, SaveEvery: time.Minute}
	if err := rec.Load(); err != nil {
		klog.Background().Info("Starting the forecast history afresh", "err", err)
	}
	return rec, nil
}

func newPrometheusSource(o *Options) (source.Source, error) {
	src, err := promsource.New(o.PrometheusURL,
		promsource.WithRateWindow(o.PrometheusWindow),
		promsource.WithQueryTimeout(o.PrometheusTimeout),
		promsource.WithNodeLabel(o.PrometheusNodeLabel),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring the Prometheus source: %w", err)
	}
	return src, nil
}
