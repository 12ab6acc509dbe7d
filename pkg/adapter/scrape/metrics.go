package scrape

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "gpufleet"
	metricsSubsystem = "adapter"
)

// selfMetrics are the scraper's own metrics.
type selfMetrics struct {
	scrapes       *prometheus.CounterVec
	duration      prometheus.Histogram
	seriesDropped prometheus.Counter
	targets       prometheus.GaugeFunc
	series        prometheus.GaugeFunc
}

func newSelfMetrics(st *Store) *selfMetrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	m := &selfMetrics{
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("scrapes_total",
			"Scrapes of metrics targets by result (ok or error).")), []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name:    "scrape_duration_seconds",
			Help:    "Duration of scrapes of metrics targets, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		seriesDropped: prometheus.NewCounter(prometheus.CounterOpts(opts("series_dropped_total",
			"Samples dropped because their target reached the series cap."))),
		targets: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("targets",
			"Metrics targets currently scraped.")), func() float64 { return float64(st.numTargets()) }),
		series: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("series",
			"Series currently stored over all targets.")), func() float64 { return float64(st.seriesCount.Load()) }),
	}
	// Both results exist from the start, so that rates of errors are defined.
	m.scrapes.WithLabelValues("ok")
	m.scrapes.WithLabelValues("error")
	return m
}

func (m *selfMetrics) observe(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.scrapes.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

func (m *selfMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.scrapes, m.duration, m.seriesDropped, m.targets, m.series}
}

// Describe implements prometheus.Collector.
func (m *selfMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *selfMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

var _ prometheus.Collector = &selfMetrics{}

// Collector returns the scraper's own metrics, for the adapter's registry:
// gpufleet_adapter_scrapes_total{result}, gpufleet_adapter_scrape_duration_seconds,
// gpufleet_adapter_targets, gpufleet_adapter_series and
// gpufleet_adapter_series_dropped_total.
func (s *Scraper) Collector() prometheus.Collector { return s.metrics }
