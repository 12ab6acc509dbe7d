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
	queue    *prometheus.GaugeVec
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
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inference_queue_depth",
			Help: "Rows waiting for a batch.",
		}, []string{"model", "version"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.batch, m.queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
