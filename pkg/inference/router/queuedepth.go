package router

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
)

// queueMetric is the inference server's gauge of rows waiting for a batch.
const queueMetric = "inference_queue_depth"

// queueDepths scrapes every endpoint's inference_queue_depth with the
// metrics adapter's scraper (pkg/adapter/scrape: one kept-alive connection
// per pod, staggered, a slow pod delays no other) at a sub-second interval,
// and copies each pod's value, summed over its models and versions, into
// its Endpoint after every interval. A pod whose scrape fails or is stale
// counts as queue 0: the router's own outstanding count still steers.
type queueDepths struct {
	interval time.Duration
	scraper  *scrape.Scraper

	mu      sync.Mutex
	targets []scrapeTarget
}

type scrapeTarget struct {
	ep   *Endpoint
	path string
}

func newQueueDepths(interval time.Duration, _ prometheus.Registerer) (*queueDepths, error) {
	s, err := scrape.New(
		scrape.WithInterval(interval),
		scrape.WithTimeout(interval*8/10),
		scrape.WithRateWindow(interval),
		scrape.WithMetrics(queueMetric),
		scrape.WithMaxSeriesPerTarget(1000),
		scrape.WithMaxBodyBytes(1<<20),
	)
	if err != nil {
		return nil, err
	}
	return &queueDepths{interval: interval, scraper: s}, nil
}

func (q *queueDepths) setTargets(ts []scrapeTarget) {
	q.mu.Lock()
	q.targets = ts
	q.mu.Unlock()
	st := make([]scrape.Target, 0, len(ts))
	for _, t := range ts {
		st = append(st, scrape.Target{Key: t.ep.Addr + t.path, URL: "http://" + t.ep.Addr + t.path})
	}
	q.scraper.SetTargets(st)
}

// run scrapes and copies until ctx ends.
func (q *queueDepths) run(ctx context.Context) {
	go func() { _ = q.scraper.Run(ctx) }()
	t := time.NewTicker(q.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			q.refresh()
		}
	}
}

// refresh copies the latest scraped values into the endpoints.
func (q *queueDepths) refresh() {
	q.mu.Lock()
	ts := q.targets
	q.mu.Unlock()
	store := q.scraper.Store()
	for _, t := range ts {
		v, ok := store.Gauge(t.ep.Addr+t.path, queueMetric, nil)
		if !ok {
			t.ep.queue.Store(0)
			continue
		}
		t.ep.queue.Store(int64(v.Value))
	}
}
