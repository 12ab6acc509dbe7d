// Package costcmd is the `cost` command of the gpufleet CLI and of the
// kubectl plugin: the GPU cost report of package cost, from the metrics
// adapter or Prometheus, as a table, CSV, JSON or HTML.
package costcmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gpufleet/gpufleet/pkg/cost"
)

// defaultAdapterURL is the metrics adapter on its default secure port.
const defaultAdapterURL = "https://localhost:443"

type costOptions struct {
	AdapterURL            string
	PrometheusURL         string
	Kubeconfig            string
	InsecureSkipTLSVerify bool
	From, To              string
	Last                  time.Duration
	By                    string
	Prices                string
	Format                string
	Output                string
	Timeout               time.Duration
	MinUtilization        float64
	MinRequestsPerReplica float64

	// Set by Validate.
	from, to time.Time
	by       cost.GroupBy
	format   cost.Format
	prices   *cost.Prices
	// now is the clock of --to's default.
	now func() time.Time
}

func newCostOptions() *costOptions {
	return &costOptions{
		AdapterURL:            defaultAdapterURL,
		Last:                  24 * time.Hour,
		By:                    string(cost.ByNamespace),
		Format:                string(cost.FormatTable),
		Timeout:               time.Minute,
		MinUtilization:        cost.DefaultMinUtilization,
		MinRequestsPerReplica: cost.DefaultMinRequestsPerReplica,
		now:                   time.Now,
	}
}

func (o *costOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.AdapterURL, "adapter-url", o.AdapterURL, "Base URL of the gpufleet metrics adapter; the report is read from "+cost.ReportPath+" under it. A kube-apiserver service proxy URL works too, with --kubeconfig.")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", "", "Read the cost counters from this Prometheus server instead of the adapter (any range Prometheus keeps).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "Use this kubeconfig's credentials (client certificate or token, and its CA) for the requests.")
	fs.BoolVar(&o.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "Do not verify the server's certificate (the adapter's serving certificate is often self-signed).")
	fs.StringVar(&o.From, "from", "", "Start of the range, RFC 3339 (e.g. 2025-01-01T00:00:00Z). Overrides --last.")
	fs.StringVar(&o.To, "to", "", "End of the range, RFC 3339 (default now).")
	fs.DurationVar(&o.Last, "last", o.Last, "Length of the range ending at --to, when --from is not given.")
	fs.StringVar(&o.By, "by", o.By, "Group by namespace, workload, node or model.")
	fs.StringVar(&o.Prices, "prices", "", "Price table (YAML: currency, models: {MODEL: {onDemand: $/GPU-h, spot: $/GPU-h}}, default). Without it, costs are left out.")
	fs.StringVar(&o.Format, "format", o.Format, "Output format: table, csv, json or html (a self-contained page with charts).")
	fs.StringVarP(&o.Output, "output", "o", "", "Write the report to this file instead of standard output.")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the adapter or Prometheus.")
	fs.Float64Var(&o.MinUtilization, "min-utilization", o.MinUtilization, "Recommend a fractional GPU to workloads using less than this share of their GPUs (0..1).")
	fs.Float64Var(&o.MinRequestsPerReplica, "min-requests-per-replica", o.MinRequestsPerReplica, "Recommend fewer replicas to Deployments and StatefulSets serving fewer requests/s per replica.")
}

// Validate checks every flag, loads the price table and resolves the
// range; it returns every problem, not just the first.
func (o *costOptions) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	if o.by, err = cost.ParseGroupBy(o.By); err != nil {
		add(fmt.Errorf("--by: %w", err))
	}
	if o.format, err = cost.ParseFormat(o.Format); err != nil {
		add(fmt.Errorf("--format: %w", err))
	}
	if o.PrometheusURL != "" {
		if _, err := cost.NewPromReader(o.PrometheusURL, nil); err != nil {
			add(fmt.Errorf("--prometheus-url: %w", err))
		}
	} else if _, err := cost.NewReportClient(o.AdapterURL, nil); err != nil {
		add(fmt.Errorf("--adapter-url: %w", err))
	}
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			add(fmt.Errorf("--kubeconfig: %w", err))
		}
	}
	add(o.resolveRange())
	if o.Timeout <= 0 {
		add(fmt.Errorf("--timeout=%s: must be positive", o.Timeout))
	}
	if o.MinUtilization < 0 || o.MinUtilization > 1 {
		add(fmt.Errorf("--min-utilization=%v: must be between 0 and 1", o.MinUtilization))
	}
	if o.MinRequestsPerReplica < 0 {
		add(fmt.Errorf("--min-requests-per-replica=%v: must be 0 or more", o.MinRequestsPerReplica))
	}
	if o.Prices != "" {
		if o.prices, err = cost.LoadPrices(o.Prices); err != nil {
			add(fmt.Errorf("--prices: %w", err))
		}
	}
	if o.Output != "" {
		if info, err := os.Stat(filepath.Dir(o.Output)); err != nil || !info.IsDir() {
			add(fmt.Errorf("--output=%s: its directory does not exist", o.Output))
		}
	}
	return errors.Join(errs...)
}

// resolveRange sets from and to from --from, --to and --last.
func (o *costOptions) resolveRange() error {
	var errs []error
	o.to = o.now()
	if o.To != "" {
		t, err := time.Parse(time.RFC3339, o.To)
		if err != nil {
			errs = append(errs, fmt.Errorf("--to=%s: not an RFC 3339 time such as 2025-01-01T00:00:00Z", o.To))
		}
		o.to = t
	}
	switch {
	case o.From != "":
		t, err := time.Parse(time.RFC3339, o.From)
		if err != nil {
			errs = append(errs, fmt.Errorf("--from=%s: not an RFC 3339 time such as 2025-01-01T00:00:00Z", o.From))
		}
		o.from = t
	case o.Last <= 0:
		errs = append(errs, fmt.Errorf("--last=%s: must be positive", o.Last))
	default:
		o.from = o.to.Add(-o.Last)
	}
	if len(errs) == 0 && !o.from.Before(o.to) {
		errs = append(errs, fmt.Errorf("--from=%s is not before --to=%s", o.from.Format(time.RFC3339), o.to.Format(time.RFC3339)))
	}
	return errors.Join(errs...)
}

// NewCommand is `gpufleet cost` (and `kubectl gpufleet cost`).
func NewCommand() *cobra.Command {
	o := newCostOptions()
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Report who uses which GPU-hours, what they cost, what is idle and what to change",
		Long: `GPU-hours allocated (whole GPUs and gpufleet.io/gpu-milli shares, by their
share) and used (the gpu-agent's per-pod utilization), efficiency, cost from a
price table, idle capacity per node, and recommendations with the figures that
triggered them. Reads the metrics adapter's report endpoint (the range it still
holds, 24 h by default) or, with --prometheus-url, the adapter's cost counters
in Prometheus (any range it keeps).`,
		Example: `  gpufleet cost --adapter-url https://localhost:6443 --insecure-skip-tls-verify --kubeconfig admin.kubeconfig
  gpufleet cost --prometheus-url http://prometheus:9090 --last 168h --by workload --prices prices.yaml
  gpufleet cost --by node --prices prices.yaml --format html -o cost.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// Run reads the usage, builds the report and writes it.
func (o *costOptions) Run(ctx context.Context, stdout io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	client, err := o.httpClient()
	if err != nil {
		return err
	}
	var reader cost.UsageReader
	if o.PrometheusURL != "" {
		reader, err = cost.NewPromReader(o.PrometheusURL, client)
	} else {
		reader, err = cost.NewReportClient(o.AdapterURL, client)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	u, err := reader.Usage(ctx, o.from, o.to)
	if err != nil {
		return err
	}
	r, err := cost.BuildReport(u, cost.ReportOptions{
		By:     o.by,
		Prices: o.prices,
		Recommend: cost.RecommendOptions{
			MinUtilization:        o.MinUtilization,
			MinRequestsPerReplica: o.MinRequestsPerReplica,
		},
	})
	if err != nil {
		return err
	}
	if o.prices == nil {
		r.Warnings = append(r.Warnings, "no price table (--prices): costs are left out")
	}
	if o.Output == "" {
		return cost.Write(stdout, r, o.format)
	}
	return writeFileAtomic(o.Output, func(w io.Writer) error { return cost.Write(w, r, o.format) })
}

// httpClient sends requests with the kubeconfig's credentials, or plainly.
func (o *costOptions) httpClient() (*http.Client, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
		if o.InsecureSkipTLSVerify {
			cfg.Insecure = true
			cfg.CAFile, cfg.CAData = "", nil
		}
		rt, err := rest.TransportFor(cfg)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig: building the transport: %w", err)
		}
		return &http.Client{Transport: rt}, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.InsecureSkipTLSVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by --insecure-skip-tls-verify
	}
	return &http.Client{Transport: tr}, nil
}

// writeFileAtomic writes path through a temporary file in its directory,
// so that a failed report never leaves half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the report to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the report to %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("writing the report to %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the report to %s: %w", path, err)
	}
	return nil
}
