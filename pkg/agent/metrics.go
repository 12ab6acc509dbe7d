package agent

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (DESIGN.md). Every GPU series carries gpu (index) and uuid;
// every pod series namespace, pod, container, gpu and uuid. Cardinality is
// bounded by GPUs x pods sharing them.
var (
	gpuLabels = []string{"gpu", "uuid"}
	podLabels = []string{"namespace", "pod", "container", "gpu", "uuid"}

	descInfo = prometheus.NewDesc("gpufleet_gpu_info",
		"Static facts about a GPU; always 1.",
		append(gpuLabels, "name", "pci_bus_id", "architecture", "compute_capability", "driver_version", "cuda_version"), nil)
	descUtil = prometheus.NewDesc("gpufleet_gpu_utilization_ratio",
		"Fraction of the last sampling interval during which a kernel ran on the GPU (0..1).", gpuLabels, nil)
	descMemUsed = prometheus.NewDesc("gpufleet_gpu_memory_used_bytes",
		"GPU memory in use.", gpuLabels, nil)
	descMemTotal = prometheus.NewDesc("gpufleet_gpu_memory_total_bytes",
		"GPU memory in total.", gpuLabels, nil)
	descPower = prometheus.NewDesc("gpufleet_gpu_power_watts",
		"GPU power draw.", gpuLabels, nil)
	descTemp = prometheus.NewDesc("gpufleet_gpu_temperature_celsius",
		"GPU core temperature.", gpuLabels, nil)
	descClock = prometheus.NewDesc("gpufleet_gpu_sm_clock_hertz",
		"GPU streaming multiprocessor clock.", gpuLabels, nil)
	descHealthy = prometheus.NewDesc("gpufleet_gpu_healthy",
		"1 if the GPU answered the last sampling and had no XID critical error in the last minute, else 0.", gpuLabels, nil)
	descErrors = prometheus.NewDesc("gpufleet_gpu_sample_errors_total",
		"Samplings in which the GPU did not answer.", gpuLabels, nil)
	descXid = prometheus.NewDesc("gpufleet_gpu_xid_errors_total",
		"XID critical error events, by XID code.", append(gpuLabels, "xid"), nil)
	descUnattributed = prometheus.NewDesc("gpufleet_gpu_unattributed_processes",
		"Compute processes on the GPU at the last sampling whose pod is unknown.", gpuLabels, nil)
	descPodUtil = prometheus.NewDesc("gpufleet_pod_gpu_utilization_ratio",
		"Fraction of the last sampling interval during which the pod's kernels ran on the GPU (0..1).", podLabels, nil)
	descPodMem = prometheus.NewDesc("gpufleet_pod_gpu_memory_used_bytes",
		"GPU memory the pod's processes use.", podLabels, nil)
	descSamples = prometheus.NewDesc("gpufleet_agent_samplings_total",
		"Samplings of all GPUs the agent has done.", nil, nil)
	descSampleDuration = prometheus.NewDesc("gpufleet_agent_sampling_duration_seconds",
		"How long the last sampling of all GPUs took.", nil, nil)
	descSampleTime = prometheus.NewDesc("gpufleet_agent_last_sampling_timestamp_seconds",
		"Unix time of the last sampling.", nil, nil)
)

// Collector exposes the sampler's latest snapshot. Collecting never calls
// NVML, so a scrape costs microseconds however slow the GPUs answer.
type Collector struct {
	s *Sampler
}

// NewCollector returns a Prometheus collector for s.
func NewCollector(s *Sampler) *Collector { return &Collector{s: s} }

var _ prometheus.Collector = (*Collector)(nil)

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUtil, descMemUsed, descMemTotal, descPower, descTemp, descClock,
		descHealthy, descErrors, descXid, descUnattributed, descPodUtil, descPodMem, descSamples, descSampleDuration, descSampleTime} {
		ch <- d
	}
}

// Collect sends the latest snapshot's values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.Latest()
	ch <- prometheus.MustNewConstMetric(descSamples, prometheus.CounterValue, float64(c.s.samples.Load()))
	if snap == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descSampleDuration, prometheus.GaugeValue, snap.Took.Seconds())
	ch <- prometheus.MustNewConstMetric(descSampleTime, prometheus.GaugeValue, float64(snap.Time.UnixNano())/1e9)
	errs, xids, unattrib := c.s.counters()
	for _, g := range snap.GPUs {
		idx, uuid := itoa(g.Info.Index), g.Info.UUID
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, idx, uuid,
			g.Info.Name, g.Info.PCIBusID, g.Info.Architecture, g.Info.ComputeCapacity, snap.System.DriverVersion, snap.System.CUDAVersion)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolValue(g.Healthy), idx, uuid)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(errs[g.Info.Index]), idx, uuid)
		if g.Info.MemoryTotalBytes > 0 {
			ch <- prometheus.MustNewConstMetric(descMemTotal, prometheus.GaugeValue, float64(g.Info.MemoryTotalBytes), idx, uuid)
		}
		if g.Err != nil {
			continue // no readings: absent, never stale
		}
		s := g.Sample
		ch <- prometheus.MustNewConstMetric(descMemUsed, prometheus.GaugeValue, float64(s.MemoryUsedBytes), idx, uuid)
		ch <- prometheus.MustNewConstMetric(descUnattributed, prometheus.GaugeValue, float64(unattrib[g.Info.Index]), idx, uuid)
		for _, v := range []struct {
			d *prometheus.Desc
			x float64
		}{{descUtil, s.Utilization}, {descPower, s.PowerWatts}, {descTemp, s.TemperatureC}, {descClock, s.SMClockHz}} {
			if !math.IsNaN(v.x) {
				ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.x, idx, uuid)
			}
		}
	}
	for k, n := range xids {
		uuid := ""
		for _, g := range snap.GPUs {
			if g.Info.Index == k.gpu {
				uuid = g.Info.UUID
			}
		}
		ch <- prometheus.MustNewConstMetric(descXid, prometheus.CounterValue, float64(n), itoa(k.gpu), uuid, strconv.FormatUint(k.xid, 10))
	}
	for _, p := range snap.Pods {
		labels := []string{p.Pod.Namespace, p.Pod.Name, p.Pod.Container, itoa(p.GPU), p.UUID}
		if !math.IsNaN(p.Utilization) {
			ch <- prometheus.MustNewConstMetric(descPodUtil, prometheus.GaugeValue, p.Utilization, labels...)
		}
		ch <- prometheus.MustNewConstMetric(descPodMem, prometheus.GaugeValue, float64(p.MemoryUsedBytes), labels...)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
