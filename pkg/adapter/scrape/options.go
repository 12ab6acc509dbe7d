package scrape

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Defaults for the Scraper options.
const (
	DefaultInterval           = time.Second
	DefaultTimeout            = 800 * time.Millisecond
	DefaultMaxConcurrency     = 64
	DefaultMaxBodyBytes       = 10 << 20
	DefaultRateWindow         = 10 * time.Second
	DefaultMaxSeriesPerTarget = 10000
	staleIntervals            = 3
	extraRingSlots            = 2
)

// config is what the options set; New completes and validates it.
type config struct {
	interval       time.Duration
	timeout        time.Duration
	maxConcurrency int
	jitter         time.Duration
	jitterSet      bool
	client         *http.Client
	now            func() time.Time
	keep           map[string]struct{} // nil keeps every metric
	maxBodyBytes   int64
	window         time.Duration
	maxSeries      int
}

// Option configures a Scraper.
type Option func(*config)

// WithInterval sets how often every target is scraped (default 1s).
func WithInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithTimeout sets the per-target scrape timeout (default 800ms). It must not
// exceed the interval.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithMaxConcurrency bounds the number of scrapes in flight (default 64).
func WithMaxConcurrency(n int) Option { return func(c *config) { c.maxConcurrency = n } }

// WithJitter sets the spread of the targets' scrape offsets within the
// interval (default: the whole interval; 0 fires every target together).
func WithJitter(d time.Duration) Option {
	return func(c *config) { c.jitter, c.jitterSet = d, true }
}

// WithHTTPClient sets the client used for scrapes. By default, http://
// targets are scraped over one kept-alive connection per target with a
// minimal HTTP/1.1 client (see keptconn.go), which needs no goroutines for
// idle connections; https:// targets through http.DefaultClient. The
// per-target timeout applies through the request context.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// WithClock sets the clock that stamps scrapes and judges staleness
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithMetrics lists the sample names to keep, e.g.
// "inference_requests_total". Every other sample is dropped while parsing.
// For histograms and summaries the names are "<name>_sum" and
// "<name>_count"; buckets and quantiles are never stored. Without this
// option every sample is kept, bounded only by the series cap.
func WithMetrics(names ...string) Option {
	return func(c *config) {
		c.keep = make(map[string]struct{}, len(names))
		for _, n := range names {
			c.keep[n] = struct{}{}
		}
	}
}

// WithMaxBodyBytes bounds a scrape's response body (default 10 MiB); a
// larger body fails the scrape.
func WithMaxBodyBytes(n int64) Option { return func(c *config) { c.maxBodyBytes = n } }

// WithRateWindow sets the longest window Rate is guaranteed to cover
// (default 10s); it sizes each series' ring.
func WithRateWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithMaxSeriesPerTarget caps the series stored per target (default 10,000);
// samples of further series are dropped and counted.
func WithMaxSeriesPerTarget(n int) Option { return func(c *config) { c.maxSeries = n } }

func newConfig(opts []Option) (config, error) {
	c := config{
		interval:       DefaultInterval,
		timeout:        DefaultTimeout,
		maxConcurrency: DefaultMaxConcurrency,
		now:            time.Now,
		maxBodyBytes:   DefaultMaxBodyBytes,
		window:         DefaultRateWindow,
		maxSeries:      DefaultMaxSeriesPerTarget,
	}
	for _, o := range opts {
		o(&c)
	}
	if !c.jitterSet {
		c.jitter = c.interval
	}
	return c, c.validate()
}

// validate returns every problem, not only the first.
func (c *config) validate() error {
	var errs []error
	if c.interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %v must be positive", c.interval))
	}
	if c.timeout <= 0 || c.timeout > c.interval {
		errs = append(errs, fmt.Errorf("timeout %v must be positive and at most the interval %v", c.timeout, c.interval))
	}
	if c.maxConcurrency < 1 {
		errs = append(errs, fmt.Errorf("max concurrency %d must be at least 1", c.maxConcurrency))
	}
	if c.jitter < 0 || c.jitter > c.interval {
		errs = append(errs, fmt.Errorf("jitter %v must be between 0 and the interval %v", c.jitter, c.interval))
	}
	if c.now == nil {
		errs = append(errs, errors.New("clock must not be nil"))
	}
	if c.maxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d must be positive", c.maxBodyBytes))
	}
	if c.window < c.interval {
		errs = append(errs, fmt.Errorf("rate window %v must be at least the interval %v", c.window, c.interval))
	}
	if c.maxSeries < 1 {
		errs = append(errs, fmt.Errorf("max series per target %d must be at least 1", c.maxSeries))
	}
	return errors.Join(errs...)
}

// ringLen is the number of samples kept per series: enough to cover the
// rate window at the scrape interval, plus slack for jittered edges.
func (c *config) ringLen() int {
	n := int((c.window + c.interval - 1) / c.interval)
	return n + extraRingSlots
}

func (c *config) keeps(name string) bool {
	if c.keep == nil {
		return true
	}
	_, ok := c.keep[name]
	return ok
}
