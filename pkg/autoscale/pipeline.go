package autoscale

import (
	"errors"
	"fmt"
	"time"
)

// PipelineKind names how a rate reaches the HPA.
type PipelineKind string

const (
	// PipelineGpufleet is the gpufleet metrics adapter's embedded source:
	// it scrapes every pod every second and serves the rate over the
	// newest samples of its rate window.
	PipelineGpufleet PipelineKind = "gpufleet"
	// PipelinePrometheus is Prometheus scraping every ScrapeInterval and
	// prometheus-adapter (or gpufleet's --prometheus-url source) asking
	// rate(...[RateWindow]) when the HPA asks.
	PipelinePrometheus PipelineKind = "prometheus"
)

// Pipeline models the metric path from the pods' request counters to the
// value the HPA reads: which counter samples exist (scrapes at multiples
// of ScrapeInterval) and which two of them the rate is taken between.
type Pipeline struct {
	Kind           PipelineKind
	ScrapeInterval time.Duration
	// RateWindow: gpufleet takes the samples of the last RateWindow
	// before its newest scrape (--rate-window); Prometheus those within
	// the range of rate(...[RateWindow]) before the query.
	RateWindow time.Duration
	// Delay is extra staleness on top (e.g. an adapter's cache); 0 for
	// both defaults.
	Delay time.Duration
}

// GpufleetPipeline is the metrics adapter's default (docs/metrics-adapter.md:
// --scrape-interval 1s, --rate-window 2s; a load step visible to the HPA in
// 2.3 s as measured by make bench-adapter).
func GpufleetPipeline() Pipeline {
	return Pipeline{Kind: PipelineGpufleet, ScrapeInterval: time.Second, RateWindow: 2 * time.Second}
}

// PrometheusPipeline is the Prometheus setup make bench-adapter measured
// (scrape interval 15 s, rate(...[1m]): a step visible in 47 s) and that
// docs/metrics-adapter.md recommends for --prometheus-url (a range of at
// least four scrape intervals). prometheus-adapter's own walkthrough
// (30 s scrapes, rate[2m]) is slower still.
func PrometheusPipeline() Pipeline {
	return Pipeline{Kind: PipelinePrometheus, ScrapeInterval: 15 * time.Second, RateWindow: time.Minute}
}

// Validate returns every problem of the pipeline.
func (p Pipeline) Validate() error {
	var errs []error
	if p.Kind != PipelineGpufleet && p.Kind != PipelinePrometheus {
		errs = append(errs, fmt.Errorf("pipeline %q: want gpufleet or prometheus", p.Kind))
	}
	if p.ScrapeInterval < time.Second || p.ScrapeInterval%time.Second != 0 {
		errs = append(errs, fmt.Errorf("scrape interval %v: want whole seconds, at least 1s", p.ScrapeInterval))
	}
	if p.RateWindow%time.Second != 0 || p.RateWindow < p.ScrapeInterval {
		errs = append(errs, fmt.Errorf("rate window %v: want whole seconds, at least the scrape interval %v", p.RateWindow, p.ScrapeInterval))
	}
	if p.Kind == PipelinePrometheus && p.RateWindow < 2*p.ScrapeInterval {
		errs = append(errs, fmt.Errorf("rate window %v: Prometheus needs two samples in range, at least 2 x the scrape interval", p.RateWindow))
	}
	if p.Delay < 0 || p.Delay%time.Second != 0 {
		errs = append(errs, fmt.Errorf("delay %v: want whole seconds >= 0", p.Delay))
	}
	return errors.Join(errs...)
}

// observer computes what a pipeline shows at a time from the cumulative
// request count.
type observer struct {
	p        Pipeline
	interval int
	window   int
	delay    int
	// counter[s] is the number of requests before second s.
	counter []float64
}

func newObserver(p Pipeline, rate []float64) *observer {
	c := make([]float64, len(rate)+1)
	for i, r := range rate {
		c[i+1] = c[i] + r
	}
	return &observer{p: p, interval: int(p.ScrapeInterval / time.Second), window: int(p.RateWindow / time.Second), delay: int(p.Delay / time.Second), counter: c}
}

// rate is the rate the HPA reads at second s, false when the pipeline has
// no two samples yet. Scrapes happen at multiples of the interval; one at
// the very second of the query is not in yet.
func (o *observer) rate(s int) (float64, bool) {
	t := s - o.delay
	if t <= 0 {
		return 0, false
	}
	last := ((t - 1) / o.interval) * o.interval
	var first int
	switch o.p.Kind {
	case PipelinePrometheus:
		// Samples in (t-window, t]: the first multiple of the interval
		// after t-window.
		lo := t - o.window
		first = (floorDivInt(lo, o.interval) + 1) * o.interval
	default:
		first = last - o.window
	}
	first = max(first, 0)
	if last-first < 1 || last >= len(o.counter) {
		return 0, false
	}
	return (o.counter[last] - o.counter[first]) / float64(last-first), true
}

func floorDivInt(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
