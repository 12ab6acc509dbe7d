// Package app builds the model-router command.
package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/gpufleet/gpufleet/pkg/inference/router"
)

// Options are the router's flags.
type Options struct {
	Rules          string
	ReloadInterval time.Duration
	Listen         string
	Kubeconfig     string
	Namespace      string

	Policy              string
	QueueScrapeInterval time.Duration
	MaxAttempts         int
	RetryBudgetRatio    float64
	UpstreamTimeout     time.Duration
	MaxBodyBytes        int64

	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
}

// NewOptions returns the defaults; the namespace defaults to
// $POD_NAMESPACE, the router's own.
func NewOptions() *Options {
	return &Options{
		Rules:               "/etc/model-router/rules.yaml",
		ReloadInterval:      5 * time.Second,
		Listen:              ":8080",
		Namespace:           os.Getenv("POD_NAMESPACE"),
		Policy:              string(router.LeastRequest),
		QueueScrapeInterval: 100 * time.Millisecond,
		MaxAttempts:         3,
		RetryBudgetRatio:    0.2,
		UpstreamTimeout:     30 * time.Second,
		MaxBodyBytes:        8 << 20,
		ShutdownDelay:       5 * time.Second,
		ShutdownTimeout:     30 * time.Second,
	}
}

// AddFlags adds the flags to fs, in named groups.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Rules, "rules", o.Rules, "Routing rules file (docs/model-router.md), e.g. a mounted ConfigMap key.")
	fs.DurationVar(&o.ReloadInterval, "rules-reload-interval", o.ReloadInterval, "How often the rules file is reread; changed valid rules apply at once, invalid ones are logged and ignored. 0: never.")
	fs.StringVar(&o.Listen, "listen", o.Listen, "Address of the v2 API, /metrics, /healthz and /readyz.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file; empty: in-cluster configuration in a pod, else no API server (only endpoints backends).")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of Services, pods and Rollouts the rules name without one (default $POD_NAMESPACE).")

	fs.StringVar(&o.Policy, "policy", o.Policy, "Pod choice within a backend: least-request (power of two choices on (outstanding requests + scraped inference_queue_depth + 1) x the pod's recent response time) or round-robin.")
	fs.DurationVar(&o.QueueScrapeInterval, "queue-scrape-interval", o.QueueScrapeInterval, "How often each pod's inference_queue_depth is scraped (least-request); 0 turns scraping off.")
	fs.IntVar(&o.MaxAttempts, "max-attempts", o.MaxAttempts, "Pods one request may be sent to: a refusal (429/503) or a failed connection moves it to another; a request that may have run is never resent.")
	fs.Float64Var(&o.RetryBudgetRatio, "retry-budget-ratio", o.RetryBudgetRatio, "Share of requests that may be retried in the long run.")
	fs.DurationVar(&o.UpstreamTimeout, "upstream-timeout", o.UpstreamTimeout, "Time a pod has to answer; then 504, not retried.")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "Largest request body; larger gets 413.")

	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "After SIGTERM: how long to keep serving with readiness false, so load balancers stop sending first.")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "After the delay: how long in-flight requests may take to finish.")
}

// Validate returns every problem with the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Rules == "" {
		errs = append(errs, errors.New("--rules must name the routing rules file"))
	}
	if o.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("--rules-reload-interval=%s: must not be negative", o.ReloadInterval))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen=%q: %w", o.Listen, err))
	}
	switch router.Policy(o.Policy) {
	case router.LeastRequest, router.RoundRobin:
	default:
		errs = append(errs, fmt.Errorf("--policy=%q: want %s or %s", o.Policy, router.LeastRequest, router.RoundRobin))
	}
	if o.QueueScrapeInterval < 0 || (o.QueueScrapeInterval > 0 && o.QueueScrapeInterval < 10*time.Millisecond) {
		errs = append(errs, fmt.Errorf("--queue-scrape-interval=%s: want 0 (off) or at least 10ms", o.QueueScrapeInterval))
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("--max-attempts=%d: want 1..10", o.MaxAttempts))
	}
	if o.RetryBudgetRatio < 0 || o.RetryBudgetRatio > 1 {
		errs = append(errs, fmt.Errorf("--retry-budget-ratio=%v: want 0..1", o.RetryBudgetRatio))
	}
	if o.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--upstream-timeout=%s: must be positive", o.UpstreamTimeout))
	}
	if o.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-body-bytes=%d: want at least 1024", o.MaxBodyBytes))
	}
	if o.ShutdownDelay < 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-delay must not be negative, --shutdown-timeout must be positive"))
	}
	return errors.Join(errs...)
}
