package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PodResourcesSource is the kubelet PodResources client, as metrics see it.
type PodResourcesSource interface {
	Stats() (refreshes, failures uint64, lastSuccess time.Time)
}

var (
	descPRRefreshes = prometheus.NewDesc("gpufleet_agent_pod_resources_refreshes_total",
		"Attempts to read GPU allocations from the kubelet PodResources API.", nil, nil)
	descPRFailures = prometheus.NewDesc("gpufleet_agent_pod_resources_failures_total",
		"Failed attempts to read GPU allocations from the kubelet PodResources API.", nil, nil)
	descPRLast = prometheus.NewDesc("gpufleet_agent_pod_resources_last_success_timestamp_seconds",
		"Unix time GPU allocations were last read from the kubelet; 0 if never.", nil, nil)
)

type podResourcesCollector struct{ sources []PodResourcesSource }

// NewPodResourcesCollector exports the PodResources client's counters; with
// no source it exports nothing.
func NewPodResourcesCollector(sources ...PodResourcesSource) prometheus.Collector {
	return podResourcesCollector{sources: sources}
}

func (c podResourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPRRefreshes
	ch <- descPRFailures
	ch <- descPRLast
}

func (c podResourcesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.sources {
		refreshes, failures, last := s.Stats()
		ch <- prometheus.MustNewConstMetric(descPRRefreshes, prometheus.CounterValue, float64(refreshes))
		ch <- prometheus.MustNewConstMetric(descPRFailures, prometheus.CounterValue, float64(failures))
		lastSec := 0.0
		if !last.IsZero() {
			lastSec = float64(last.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descPRLast, prometheus.GaugeValue, lastSec)
	}
}
