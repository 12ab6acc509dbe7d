package deviceplugintest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// PluginMetrics is what the agent's device plugin reported on /metrics.
type PluginMetrics struct {
	// Counters are the counters and gauges, and histograms' _sum and
	// _count, summed over labels.
	Counters map[string]float64
	// calls are the call-duration histogram's cumulative bucket counts by
	// upper bound, summed over resources: by method, and over all methods
	// under "".
	calls map[string]map[float64]uint64
	count map[string]uint64
}

// ScrapePlugin reads the agent's /metrics.
func (e *Env) ScrapePlugin(ctx context.Context) (*PluginMetrics, error) {
	url, err := e.AgentMetricsURL(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return parsePluginMetrics(body)
}

func parsePluginMetrics(body []byte) (*PluginMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing the agent's metrics: %w", err)
	}
	m := &PluginMetrics{Counters: map[string]float64{}, calls: map[string]map[float64]uint64{}, count: map[string]uint64{}}
	for name, f := range families {
		for _, metric := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				m.Counters[name] += metric.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				m.Counters[name] += metric.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := metric.GetHistogram()
				m.Counters[name+"_sum"] += h.GetSampleSum()
				m.Counters[name+"_count"] += float64(h.GetSampleCount())
				if name != "gpufleet_deviceplugin_call_duration_seconds" {
					continue
				}
				method := ""
				for _, l := range metric.GetLabel() {
					if l.GetName() == "method" {
						method = l.GetValue()
					}
				}
				for _, k := range []string{"", method} {
					if m.calls[k] == nil {
						m.calls[k] = map[float64]uint64{}
					}
					m.count[k] += h.GetSampleCount()
					for _, b := range h.GetBucket() {
						m.calls[k][b.GetUpperBound()] += b.GetCumulativeCount()
					}
				}
			}
		}
	}
	return m, nil
}

// CallQuantile is the q-quantile (0..1) of the plugin's kubelet calls of
// method (GetPreferredAllocation, Allocate, PreStartContainer; "": all)
// made since before, interpolated within the histogram's buckets; NaN
// without calls.
func (m *PluginMetrics) CallQuantile(before *PluginMetrics, method string, q float64) float64 {
	total := m.count[method]
	if before != nil {
		total -= before.count[method]
	}
	if total == 0 {
		return math.NaN()
	}
	bounds := slices.Sorted(maps.Keys(m.calls[method]))
	rank := q * float64(total)
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := float64(m.calls[method][ub])
		if before != nil {
			c -= float64(before.calls[method][ub])
		}
		if c >= rank {
			if math.IsInf(ub, 1) {
				return prevBound
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/math.Max(c-prevCount, 1)
		}
		prevBound, prevCount = ub, c
	}
	return prevBound
}

// Since returns counter increases from before to m.
func (m *PluginMetrics) Since(before *PluginMetrics, name string) float64 {
	if before == nil {
		return m.Counters[name]
	}
	return m.Counters[name] - before.Counters[name]
}
