package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series (names in DESIGN.md). Labels
// are bounded: models and versions come from the repository, codes from
// the handful this server answers.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	batch    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inference_requests_total",
			Help: "Inference requests answered, by model, version and HTTP status code.",
		}, []string{"model", "version", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inference_request_duration_seconds",
			Help:    "Time from receiving an inference request to answering it, queueing included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"model", "version"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inference_batch_size",
			Help:    "Rows per batch run through the model.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}, []string{"model", "version"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.batch} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// queueDepth reports inference_queue_depth, each version's rows waiting
// for a batch, read at scrape time: a balancer scraping it (the model
// router) sees the queue as it is, not as it was after the last batch.
type queueDepth struct {
	desc     *prometheus.Desc
	versions []queuedVersion // sorted by model and version
}

type queuedVersion struct {
	model, version string
	rows           func() int64
}

func newQueueDepth(versions []queuedVersion) *queueDepth {
	return &queueDepth{
		desc:     prometheus.NewDesc("inference_queue_depth", "Rows waiting for a batch.", []string{"model", "version"}, nil),
		versions: versions,
	}
}

func (q *queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

func (q *queueDepth) Collect(ch chan<- prometheus.Metric) {
	for _, v := range q.versions {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(v.rows()), v.model, v.version)
	}
}
