// Package app builds the metrics-adapter command.
package app

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/gpufleet/gpufleet/pkg/adapter/forecaster"
	"github.com/gpufleet/gpufleet/pkg/adapter/servingcert"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// Options are the adapter's flags: the API server's (secure serving,
// delegated authentication and authorization, --lister-kubeconfig) and the
// metric sources'.
type Options struct {
	basecmd.AdapterBase

	ScrapeInterval      time.Duration
	ScrapeTimeout       time.Duration
	ScrapeConcurrency   int
	RateWindow          time.Duration
	MaxSeriesPerTarget  int
	AgentSelector       string
	PrometheusURL       string
	PrometheusWindow    time.Duration
	PrometheusTimeout   time.Duration
	PrometheusNodeLabel string

	CostPeriod    time.Duration
	CostRetention time.Duration
	CostPrices    string

	// Forecast serves requests_per_second_forecast (package forecaster).
	Forecast             bool
	ForecastHorizon      time.Duration
	ForecastRecordPeriod time.Duration
	ForecastStateFile    string
	ForecastMaxSeries    int
	ForecastConfig       forecast.Config

	// ServingCertSecret (NAMESPACE/NAME) turns on the managed serving
	// certificate; ServingCert holds its other settings.
	ServingCertSecret string
	ServingCert       servingcert.Options
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{
		ScrapeInterval:       time.Second,
		ScrapeTimeout:        800 * time.Millisecond,
		ScrapeConcurrency:    64,
		RateWindow:           2 * time.Second,
		MaxSeriesPerTarget:   10000,
		AgentSelector:        "app.kubernetes.io/name=gpu-agent",
		PrometheusWindow:     time.Minute,
		PrometheusTimeout:    5 * time.Second,
		PrometheusNodeLabel:  "node",
		CostPeriod:           10 * time.Second,
		CostRetention:        24 * time.Hour,
		Forecast:             true,
		ForecastHorizon:      2 * time.Minute,
		ForecastRecordPeriod: 10 * time.Second,
		ForecastMaxSeries:    1000,
		ForecastConfig:       forecast.DefaultConfig(),
		ServingCert: servingcert.Options{
			ServiceName:      "gpufleet-metrics-adapter",
			APIServices:      servingcert.DefaultAPIServices,
			CAValidity:       servingcert.DefaultCAValidity,
			CertValidity:     servingcert.DefaultCertValidity,
			PropagationDelay: servingcert.DefaultPropagationDelay,
		},
	}
	o.Name = "gpufleet-metrics-adapter"
	return o
}

// AddFlags adds the adapter's flags, the API server's included, to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.FlagSet = fs
	o.InstallFlags()
	fs.DurationVar(&o.ScrapeInterval, "scrape-interval", o.ScrapeInterval, "How often each pod and gpu-agent is scraped (embedded source).")
	fs.DurationVar(&o.ScrapeTimeout, "scrape-timeout", o.ScrapeTimeout, "Per-target scrape timeout; at most --scrape-interval.")
	fs.IntVar(&o.ScrapeConcurrency, "scrape-concurrency", o.ScrapeConcurrency, "Scrapes in flight at most.")
	fs.DurationVar(&o.RateWindow, "rate-window", o.RateWindow, "Window over which counters become rates (embedded source): shorter follows load steps faster, longer is smoother. At least twice --scrape-interval.")
	fs.IntVar(&o.MaxSeriesPerTarget, "max-series-per-target", o.MaxSeriesPerTarget, "Series kept per scraped pod; further series are dropped and counted.")
	fs.StringVar(&o.AgentSelector, "agent-pod-selector", o.AgentSelector, "Label selector of the gpu-agent pods, scraped for GPU metrics of nodes and pods.")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", o.PrometheusURL, "Read metrics from this Prometheus server instead of scraping pods (e.g. http://prometheus.monitoring:9090).")
	fs.DurationVar(&o.PrometheusWindow, "prometheus-rate-window", o.PrometheusWindow, "Range of rate() in PromQL; at least 4 x Prometheus' scrape interval.")
	fs.DurationVar(&o.PrometheusTimeout, "prometheus-timeout", o.PrometheusTimeout, "Timeout of one PromQL query.")
	fs.StringVar(&o.PrometheusNodeLabel, "prometheus-node-label", o.PrometheusNodeLabel, "Label that carries the node name on gpu-agent series in Prometheus.")
	fs.DurationVar(&o.CostPeriod, "cost-period", o.CostPeriod, "How often GPU use is sampled for cost accounting (gpufleet_cost_* counters and "+cost.ReportPath+").")
	fs.DurationVar(&o.CostRetention, "cost-retention", o.CostRetention, "How much cost history the adapter keeps in memory for "+cost.ReportPath+" (Prometheus keeps the counters for longer).")
	fs.StringVar(&o.ServingCertSecret, "serving-cert-secret", o.ServingCertSecret, "Keep the serving certificate and its CA in this Secret (NAMESPACE/NAME), inject the CA into the APIServices (--ca-bundle-apiservices) so kube-apiserver verifies the adapter, and rotate both before they expire. Replaces --tls-cert-file and the self-signed --cert-dir certificate.")
	fs.StringVar(&o.ServingCert.ServiceName, "serving-cert-service", o.ServingCert.ServiceName, "Service (in the Secret's namespace) the APIServices point at: the serving certificate names <service>.<namespace>.svc.")
	fs.StringSliceVar(&o.ServingCert.APIServices, "ca-bundle-apiservices", o.ServingCert.APIServices, "APIServices that get the CA bundle (with --serving-cert-secret).")
	fs.DurationVar(&o.ServingCert.CAValidity, "ca-validity", o.ServingCert.CAValidity, "Lifetime of a new CA (with --serving-cert-secret); it is replaced with a third left.")
	fs.DurationVar(&o.ServingCert.CertValidity, "serving-cert-validity", o.ServingCert.CertValidity, "Lifetime of a new serving certificate (with --serving-cert-secret); it is renewed with a third left.")
	fs.DurationVar(&o.ServingCert.PropagationDelay, "ca-propagation-delay", o.ServingCert.PropagationDelay, "How long a new CA bundle is given to reach every kube-apiserver before a certificate signed by the new CA is served (with --serving-cert-secret).")
	fs.BoolVar(&o.Forecast, "forecast", o.Forecast, "Serve requests_per_second_forecast for pods, Deployments and StatefulSets: the rate expected over the workload's start-up time, never below requests_per_second.")
	fs.DurationVar(&o.ForecastHorizon, "forecast-horizon", o.ForecastHorizon, "Forecast horizon of workloads without the "+forecaster.StartupAnnotation+" annotation.")
	fs.DurationVar(&o.ForecastRecordPeriod, "forecast-record-period", o.ForecastRecordPeriod, "How often each workload's requests_per_second is recorded into its history.")
	fs.StringVar(&o.ForecastStateFile, "forecast-state-file", o.ForecastStateFile, "Keep the forecast history in this file (written every minute, read at start) so a restart keeps it; empty: rebuilt after a restart (trend within minutes, daily seasonality after a day).")
	fs.IntVar(&o.ForecastMaxSeries, "forecast-max-series", o.ForecastMaxSeries, "Workloads with a forecast history at most (each takes 68 KiB with the default bucket and days).")
	fs.DurationVar(&o.ForecastConfig.Bucket, "forecast-bucket", o.ForecastConfig.Bucket, "Resolution of the forecast history.")
	fs.IntVar(&o.ForecastConfig.HistoryDays, "forecast-history-days", o.ForecastConfig.HistoryDays, "Days of forecast history kept per workload (1..8).")
	fs.DurationVar(&o.ForecastConfig.TrendWindow, "forecast-trend-window", o.ForecastConfig.TrendWindow, "How far back the forecast's short-term trend is fitted.")
	fs.StringVar(&o.CostPrices, "cost-prices", o.CostPrices, "Price table (YAML, $/GPU-hour per GPU model, on-demand and spot) for costs in "+cost.ReportPath+"; empty: GPU-hours only.")
}

// Validate returns every invalid flag.
func (o *Options) Validate() error {
	var errs []error
	if o.ScrapeInterval <= 0 {
		errs = append(errs, fmt.Errorf("--scrape-interval=%v: must be positive", o.ScrapeInterval))
	}
	if o.ScrapeTimeout <= 0 || o.ScrapeTimeout > o.ScrapeInterval {
		errs = append(errs, fmt.Errorf("--scrape-timeout=%v: must be positive and at most --scrape-interval (%v)", o.ScrapeTimeout, o.ScrapeInterval))
	}
	if o.ScrapeConcurrency < 1 {
		errs = append(errs, fmt.Errorf("--scrape-concurrency=%d: must be at least 1", o.ScrapeConcurrency))
	}
	if o.RateWindow < 2*o.ScrapeInterval {
		errs = append(errs, fmt.Errorf("--rate-window=%v: must be at least twice --scrape-interval (%v): a rate needs two samples", o.RateWindow, o.ScrapeInterval))
	}
	if o.MaxSeriesPerTarget < 1 {
		errs = append(errs, fmt.Errorf("--max-series-per-target=%d: must be at least 1", o.MaxSeriesPerTarget))
	}
	if _, err := labels.Parse(o.AgentSelector); err != nil {
		errs = append(errs, fmt.Errorf("--agent-pod-selector=%q: %w", o.AgentSelector, err))
	}
	if o.PrometheusURL != "" {
		u, err := url.Parse(o.PrometheusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--prometheus-url=%q: want an http(s) URL such as http://prometheus:9090", o.PrometheusURL))
		}
		if o.PrometheusWindow <= 0 {
			errs = append(errs, fmt.Errorf("--prometheus-rate-window=%v: must be positive", o.PrometheusWindow))
		}
		if o.PrometheusTimeout <= 0 {
			errs = append(errs, fmt.Errorf("--prometheus-timeout=%v: must be positive", o.PrometheusTimeout))
		}
	}
	if o.CostPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--cost-period=%v: must be positive", o.CostPeriod))
	}
	if o.CostRetention < time.Hour {
		errs = append(errs, fmt.Errorf("--cost-retention=%v: must be at least 1h", o.CostRetention))
	}
	if o.CostPrices != "" {
		if _, err := cost.LoadPrices(o.CostPrices); err != nil {
			errs = append(errs, fmt.Errorf("--cost-prices=%q: %w", o.CostPrices, err))
		}
	}
	if o.Forecast {
		if err := o.ForecastConfig.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--forecast-*: %w", err))
		}
		if o.ForecastHorizon < 0 || o.ForecastHorizon > 24*time.Hour {
			errs = append(errs, fmt.Errorf("--forecast-horizon=%v: want 0..24h", o.ForecastHorizon))
		}
		if o.ForecastRecordPeriod < time.Second {
			errs = append(errs, fmt.Errorf("--forecast-record-period=%v: want at least 1s", o.ForecastRecordPeriod))
		}
		if o.ForecastMaxSeries < 1 {
			errs = append(errs, fmt.Errorf("--forecast-max-series=%d: want at least 1", o.ForecastMaxSeries))
		}
	}
	errs = append(errs, o.validateServingCert()...)
	if o.CustomMetricsAdapterServerOptions != nil {
		errs = append(errs, o.CustomMetricsAdapterServerOptions.Validate()...)
	}
	return errors.Join(errs...)
}
