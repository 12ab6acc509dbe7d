package promsource

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Defaults for the Source options.
const (
	DefaultRateWindow     = time.Minute
	DefaultQueryTimeout   = 5 * time.Second
	DefaultNamespaceLabel = "namespace"
	DefaultPodLabel       = "pod"
	DefaultNodeLabel      = "node"
)

// config is what the options set; New completes and validates it.
type config struct {
	client          *http.Client
	clientSet       bool
	roundTripper    http.RoundTripper
	roundTripperSet bool
	window          time.Duration
	timeout         time.Duration
	namespaceLabel  string
	podLabel        string
	nodeLabel       string
}

// Option configures a Source.
type Option func(*config)

// WithHTTPClient sets the client that sends queries (default: a client with
// its own transport and no client-level timeout; the query timeout applies
// through the request context). Use it for TLS and authentication.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) { c.client, c.clientSet = hc, true }
}

// WithRoundTripper sets the transport of the default client, e.g. one that
// adds a bearer token. It excludes WithHTTPClient.
func WithRoundTripper(rt http.RoundTripper) Option {
	return func(c *config) { c.roundTripper, c.roundTripperSet = rt, true }
}

// WithRateWindow sets the range of rate() for Rate metrics (default 1m). It
// must be a whole number of milliseconds and should span at least two
// scrape intervals of the Prometheus server, or rate() has no value.
func WithRateWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithQueryTimeout bounds each query, both the HTTP request and the
// evaluation on the server (default 5s).
func WithQueryTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithNamespaceLabel sets the label that holds a pod's namespace in the
// series (default "namespace").
func WithNamespaceLabel(name string) Option { return func(c *config) { c.namespaceLabel = name } }

// WithPodLabel sets the label that holds a pod's name in the series
// (default "pod").
func WithPodLabel(name string) Option { return func(c *config) { c.podLabel = name } }

// WithNodeLabel sets the label that holds a node's name in the gpu-agents'
// series (default "node").
func WithNodeLabel(name string) Option { return func(c *config) { c.nodeLabel = name } }

func newConfig(opts []Option) (config, error) {
	c := config{
		window:         DefaultRateWindow,
		timeout:        DefaultQueryTimeout,
		namespaceLabel: DefaultNamespaceLabel,
		podLabel:       DefaultPodLabel,
		nodeLabel:      DefaultNodeLabel,
	}
	for _, o := range opts {
		o(&c)
	}
	if !c.clientSet && c.roundTripper != nil {
		c.client = &http.Client{Transport: c.roundTripper}
	}
	if !c.clientSet && !c.roundTripperSet {
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, c.validate()
}

// validate returns every problem, not only the first.
func (c *config) validate() error {
	var errs []error
	switch {
	case c.clientSet && c.roundTripperSet:
		errs = append(errs, errors.New("set either an HTTP client or a round tripper, not both"))
	case c.clientSet && c.client == nil:
		errs = append(errs, errors.New("HTTP client must not be nil"))
	case c.roundTripperSet && c.roundTripper == nil:
		errs = append(errs, errors.New("round tripper must not be nil"))
	}
	if c.window <= 0 || c.window%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("rate window %v must be a positive whole number of milliseconds", c.window))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("query timeout %v must be positive", c.timeout))
	}
	seen := map[string]string{}
	for _, l := range []struct{ what, name string }{
		{"namespace", c.namespaceLabel},
		{"pod", c.podLabel},
		{"node", c.nodeLabel},
	} {
		if err := checkLabelName(l.name); err != nil {
			errs = append(errs, fmt.Errorf("%s label: %w", l.what, err))
			continue
		}
		if other, dup := seen[l.name]; dup {
			errs = append(errs, fmt.Errorf("%s label %q is also the %s label; they must differ", l.what, l.name, other))
			continue
		}
		seen[l.name] = l.what
	}
	return errors.Join(errs...)
}
