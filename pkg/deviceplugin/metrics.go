package deviceplugin

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls         *prometheus.HistogramVec
	lists         prometheus.Histogram
	gets          prometheus.Histogram
	indexWaits    prometheus.Histogram
	mismatches    *prometheus.CounterVec
	steerFailures *prometheus.CounterVec
	unidentified  *prometheus.CounterVec
	ambiguous     *prometheus.CounterVec
	verified      *prometheus.CounterVec
	unverified    *prometheus.CounterVec
	registrations *prometheus.CounterVec
	devices       *prometheus.GaugeVec
}

// callBuckets are fine below the 20 ms target of a kubelet call.
var callBuckets = []float64{.0005, .001, .002, .003, .004, .005, .0075, .01, .0125, .015, .0175, .02, .025, .03, .04, .05, .075, .1, .25, .5, 1, 2.5}

func newMetrics() *metrics {
	const ns = "gpufleet_deviceplugin_"
	res := []string{"resource"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + name, Help: help}, res)
	}
	return &metrics{
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ns + "call_duration_seconds",
			Help:    "Time the device plugin took to answer a kubelet call, by method (GetPreferredAllocation, Allocate, PreStartContainer) and resource.",
			Buckets: callBuckets,
		}, []string{"method", "resource"}),
		lists: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    ns + "podresources_list_duration_seconds",
			Help:    "Time the kubelet took to answer the plugin's pod-resources List (part of every call's time).",
			Buckets: callBuckets,
		}),
		gets: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    ns + "podresources_get_duration_seconds",
			Help:    "Time the kubelet took to answer the plugin's pod-resources Get of one pod (PreStartContainer's check of a container the plugin steered).",
			Buckets: callBuckets,
		}),
		indexWaits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    ns + "pod_index_wait_seconds",
			Help:    "Time GetPreferredAllocation waited for the pod index to see a pod the kubelet already listed.",
			Buckets: callBuckets,
		}),
		mismatches:    counter("mismatches_total", "Containers whose devices were not the GPUs of their pod's gpufleet.io/gpu-indices annotation at PreStartContainer."),
		steerFailures: counter("steering_failures_total", "Admissions whose annotated GPUs the node could not give (GetPreferredAllocation)."),
		unidentified:  counter("unidentified_admissions_total", "GetPreferredAllocation calls for which no pod waiting for devices was found; the plugin chose devices itself."),
		ambiguous:     counter("ambiguous_admissions_total", "GetPreferredAllocation calls for which more than one pod looked like the one being admitted."),
		verified:      counter("verified_containers_total", "Containers whose devices PreStartContainer checked against their pod's annotation and found right."),
		unverified:    counter("unverified_containers_total", "Containers PreStartContainer could not match to a pod (checked nothing)."),
		registrations: counter("registrations_total", "Registrations with the kubelet (one per kubelet start or plugin start)."),
		devices: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ns + "devices",
			Help: "Device IDs advertised to the kubelet, by resource and health.",
		}, []string{"resource", "health"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.calls, m.lists, m.gets, m.indexWaits, m.mismatches, m.steerFailures, m.unidentified, m.ambiguous, m.verified, m.unverified, m.registrations, m.devices}
}

// Collectors returns the plugin's metrics for the agent's /metrics.
func (p *Plugin) Collectors() []prometheus.Collector { return p.metrics.collectors() }
