package router

import (
	"github.com/prometheus/client_golang/prometheus"
)

const (
	metricsNamespace = "gpufleet"
	metricsSubsystem = "router"
	// otherModel is the model label of requests whose model no route
	// names, so that clients cannot grow the series without bound.
	otherModel = "_other"
	// noRoute is the route label of requests no route matched.
	noRoute = "_none"
	// globalLimit is the route label of the global rate limit.
	globalLimit = "_global"
)

// metrics are the router's series. Labels are bounded: routes and backends
// come from the rules, models from the rules' matches (else otherModel),
// codes and reasons from fixed sets.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	backendReqs    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	endpoints      *prometheus.GaugeVec
	weight         *prometheus.GaugeVec
	reloads        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Requests answered, by route, model and HTTP status code.")), []string{"route", "model", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "request_duration_seconds",
			Help:    "Time from receiving a request to answering it, retries included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts(opts("retries_total",
			"Requests sent again to another pod, by reason: refused (429 or 503 before running) or unreachable (no connection).")),
			[]string{"route", "model", "reason"}),
		backendReqs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("backend_requests_total",
			"Inference requests the routes' splits sent to each backend and pinned version (a request's retries count once).")),
			[]string{"route", "backend", "version"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("upstream_errors_total",
			"Failed attempts at a pod, by kind: refused, unreachable, broken (connection lost after sending), timeout, status_5xx.")),
			[]string{"route", "model", "kind"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rate_limited_total",
			"Requests answered 429 by a rate limit, by route (_global for the global limit).")), []string{"route"}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("backend_endpoints",
			"Ready endpoints of each backend.")), []string{"backend"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("route_weight_percent",
			"Current share of a route's requests per backend and version, as rules or an Argo Rollout set it.")),
			[]string{"route", "backend", "version"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rules_reloads_total",
			"Reloads of the rules file, by result (ok or error; an invalid file keeps the rules in force).")), []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.retries, m.backendReqs, m.upstreamErrors, m.rateLimited, m.endpoints, m.weight, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
