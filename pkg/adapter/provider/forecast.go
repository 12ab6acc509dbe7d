package provider

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// RequestsPerSecondForecast is the forecast metric of pods, Deployments
// and StatefulSets: the rate expected over the workload's start-up time,
// never below requests_per_second.
const RequestsPerSecondForecast = "requests_per_second_forecast"

// Forecaster predicts workload rates (package forecaster's Recorder).
type Forecaster interface {
	// Forecast is the workload's rate expected over its horizon, given
	// its reactive rate now; never below reactive.
	Forecast(w cluster.Workload, reactive float64) float64
	// Owner is the Deployment or StatefulSet that controls a pod.
	Owner(p *corev1.Pod) (cluster.Workload, bool)
}

// Option configures a Provider.
type Option func(*Provider)

// WithForecaster serves requests_per_second_forecast from f.
func WithForecaster(f Forecaster) Option {
	return func(p *Provider) { p.forecaster = f }
}

var rps = source.PodMetrics[source.RequestsPerSecond]

// workloadSum is requests_per_second summed over the workload's running
// pods with a value, and how many pods had one.
func (p *Provider) workloadSum(ctx context.Context, w cluster.Workload, sel labels.Selector) (source.Sample, int, error) {
	var pods []source.Pod
	for _, pod := range p.cache.WorkloadPods(w) {
		if cluster.Running(pod) {
			pods = append(pods, podRef(pod))
		}
	}
	vals, oks, err := p.src.PodValues(ctx, rps, pods, sel)
	if err != nil {
		return source.Sample{}, 0, err
	}
	agg, n := aggregate(source.Metric{Kind: source.Sum}, vals, oks)
	return agg, n, nil
}

// workloadForecast is the workload's forecast for the series sel selects:
// the reactive rate of those series plus their share of the predicted
// increase of the whole workload (the history is kept per workload, over
// all its series); also the reactive rate and the number of pods with a
// value (0: no value).
func (p *Provider) workloadForecast(ctx context.Context, w cluster.Workload, sel labels.Selector) (source.Sample, float64, int, error) {
	s, n, err := p.workloadSum(ctx, w, sel)
	if err != nil || n == 0 {
		return s, s.Value, n, err
	}
	reactive := s.Value
	all := s
	selected := sel != nil && !sel.Empty()
	if selected {
		if all, _, err = p.workloadSum(ctx, w, nil); err != nil {
			return s, reactive, 0, err
		}
	}
	f := math.Max(p.forecaster.Forecast(w, all.Value), all.Value) // never below reactive
	switch {
	case all.Value > 0:
		s.Value += (f - all.Value) * s.Value / all.Value
	case !selected:
		s.Value = f
	}
	return s, reactive, n, nil
}

// podForecasts adds to each pod's requests_per_second an equal share of
// its workload's predicted increase (so the values of a workload's pods
// sum to its forecast). Pods without a workload keep their rate.
func (p *Provider) podForecasts(ctx context.Context, pods []*corev1.Pod, vals []source.Sample, oks []bool, sel labels.Selector) error {
	type inc struct {
		share float64
		done  bool
	}
	byOwner := map[string]*inc{}
	for i, pod := range pods {
		if !oks[i] {
			continue
		}
		w, ok := p.forecaster.Owner(pod)
		if !ok {
			continue
		}
		key := w.Kind + "/" + w.Namespace + "/" + w.Name
		in, found := byOwner[key]
		if !found {
			in = &inc{}
			byOwner[key] = in
			f, reactive, n, err := p.workloadForecast(ctx, w, sel)
			if err != nil {
				return err
			}
			if n > 0 {
				in.share, in.done = (f.Value-reactive)/float64(n), true
			}
		}
		if in.done && in.share > 0 {
			vals[i].Value += in.share
		}
	}
	return nil
}

// lookupForecast resolves the forecast metric (served for pods and
// workloads when a forecaster is configured), else the catalog's.
func (p *Provider) lookupForecast(info cmprovider.CustomMetricInfo) (kind, source.Metric, bool, error) {
	if k, ok := resolve(info.GroupResource); ok && info.Metric == RequestsPerSecondForecast && p.forecaster != nil && k.kind != "Node" {
		return k, rps, true, nil
	}
	k, m, err := lookup(info)
	return k, m, false, err
}

// forecastMetrics lists the forecast metric's resources.
func (p *Provider) forecastMetrics() []cmprovider.CustomMetricInfo {
	if p.forecaster == nil {
		return nil
	}
	var out []cmprovider.CustomMetricInfo
	for _, gr := range []schema.GroupResource{podsGR, deploymentsGR, statefulSetsGR} {
		out = append(out, cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: true, Metric: RequestsPerSecondForecast})
	}
	return out
}
