package cost

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of the Ledger options.
const (
	DefaultPeriod     = 10 * time.Second
	DefaultRetention  = 24 * time.Hour
	DefaultDeadPodTTL = 15 * time.Minute
	// maxRetention bounds the history (31 days of minutes).
	maxRetention = 31 * 24 * time.Hour
)

type config struct {
	period     time.Duration
	maxGap     time.Duration
	retention  time.Duration
	deadPodTTL time.Duration
	clock      func() time.Time
	prices     *Prices
	recommend  RecommendOptions
}

// Option configures a Ledger.
type Option func(*config)

// WithPeriod sets the adapter's sampling period (default 10s); MaxGap
// defaults to three periods.
func WithPeriod(d time.Duration) Option { return func(c *config) { c.period = d } }

// WithMaxGap sets the longest time between two snapshots that still counts
// as observed (default 3 x period). Use and idle time are integrated only
// over such intervals; allocation is not affected.
func WithMaxGap(d time.Duration) Option { return func(c *config) { c.maxGap = d } }

// WithRetention sets how much per-minute history the Ledger keeps for
// reports (default 24h, at most 31 days). It is rounded up to whole minutes.
func WithRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithDeadPodTTL sets how long the counters of a pod that is no longer seen
// stay exposed, so that Prometheus scrapes their final values (default
// 15m). It must be longer than MaxGap.
func WithDeadPodTTL(d time.Duration) Option { return func(c *config) { c.deadPodTTL = d } }

// WithClock sets the clock the report handler uses for its default range
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithPrices prices the Ledger's reports (default: no costs).
func WithPrices(p *Prices) Option { return func(c *config) { c.prices = p } }

// WithRecommendOptions sets the thresholds of the recommendations.
func WithRecommendOptions(o RecommendOptions) Option { return func(c *config) { c.recommend = o } }

func newConfig(opts []Option) (config, error) {
	c := config{
		period:     DefaultPeriod,
		retention:  DefaultRetention,
		deadPodTTL: DefaultDeadPodTTL,
		clock:      time.Now,
	}
	for _, o := range opts {
		o(&c)
	}
	var errs []error
	if c.period <= 0 {
		errs = append(errs, fmt.Errorf("period %v: must be positive", c.period))
	}
	if c.maxGap == 0 {
		c.maxGap = 3 * c.period
	}
	if c.maxGap < c.period {
		errs = append(errs, fmt.Errorf("max gap %v: must be at least the period %v", c.maxGap, c.period))
	}
	if c.retention < time.Minute || c.retention > maxRetention {
		errs = append(errs, fmt.Errorf("retention %v: must be between 1m and %v", c.retention, maxRetention))
	}
	if c.deadPodTTL <= c.maxGap {
		errs = append(errs, fmt.Errorf("dead pod TTL %v: must be longer than the max gap %v", c.deadPodTTL, c.maxGap))
	}
	if c.clock == nil {
		errs = append(errs, errors.New("clock must not be nil"))
	}
	if err := c.recommend.validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}
