// Package provider serves the custom and external metrics APIs
// (sigs.k8s.io/custom-metrics-apiserver) from a source.Source and the
// cluster cache.
//
// Custom metrics:
//   - pods: requests_per_second, inference_queue_depth, gpu_utilization,
//     gpu_memory_used_bytes, inference_input_drift, inference_output_drift
//     (drift PSIs averaged over the series the selector matches);
//   - nodes: gpu_utilization, gpu_memory_used_bytes;
//   - deployments.apps and statefulsets.apps: requests_per_second and
//     inference_queue_depth, summed over the workload's running pods;
//   - with a Forecaster: requests_per_second_forecast of pods and
//     workloads (forecast.go).
//
// External metrics: the pod metrics, aggregated over the running pods of
// the namespace (rates and sums summed, utilization and drift averaged).
//
// In every case the metric label selector selects series by their labels
// (e.g. model=bert). An object with no current value is left out of a list
// and is "not found" when asked by name: a value is never served stale.
package provider

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// Provider implements the custom-metrics-apiserver's MetricsProvider.
type Provider struct {
	cache      *cluster.Cache
	src        source.Source
	forecaster Forecaster
}

var _ cmprovider.MetricsProvider = &Provider{}

// New returns a provider over a started cache and a source.
func New(c *cluster.Cache, src source.Source, opts ...Option) *Provider {
	p := &Provider{cache: c, src: src}
	for _, o := range opts {
		o(p)
	}
	return p
}

var (
	podsGR         = schema.GroupResource{Resource: "pods"}
	nodesGR        = schema.GroupResource{Resource: "nodes"}
	deploymentsGR  = schema.GroupResource{Group: "apps", Resource: "deployments"}
	statefulSetsGR = schema.GroupResource{Group: "apps", Resource: "statefulsets"}
)

// workloadMetrics are the pod metrics summed over a workload's pods.
var workloadMetrics = []string{source.RequestsPerSecond, source.InferenceQueueDepth}

// kind is what the provider knows about a resource it serves.
type kind struct {
	gr         schema.GroupResource
	kind       string
	apiVersion string
}

// resolve maps the group-resource of a request (as the client spelt it:
// "pods", "pod", "deployments.apps", "deployments") to one we serve.
func resolve(gr schema.GroupResource) (kind, bool) {
	switch gr.Group {
	case "", "core":
		switch gr.Resource {
		case "pods", "pod":
			return kind{podsGR, "Pod", "v1"}, true
		case "nodes", "node":
			return kind{nodesGR, "Node", "v1"}, true
		}
		if gr.Group == "core" {
			return kind{}, false
		}
	}
	if gr.Group == "" || gr.Group == "apps" {
		switch gr.Resource {
		case "deployments", "deployment":
			return kind{deploymentsGR, "Deployment", "apps/v1"}, true
		case "statefulsets", "statefulset":
			return kind{statefulSetsGR, "StatefulSet", "apps/v1"}, true
		}
	}
	return kind{}, false
}

// metricFor returns the catalog entry of a metric of k.
func metricFor(k kind, name string) (source.Metric, bool) {
	switch k.kind {
	case "Pod":
		m, ok := source.PodMetrics[name]
		return m, ok
	case "Node":
		m, ok := source.NodeMetrics[name]
		return m, ok
	}
	for _, w := range workloadMetrics {
		if w == name {
			return source.PodMetrics[name], true
		}
	}
	return source.Metric{}, false
}

func lookup(info cmprovider.CustomMetricInfo) (kind, source.Metric, error) {
	k, ok := resolve(info.GroupResource)
	if !ok {
		return kind{}, source.Metric{}, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	m, ok := metricFor(k, info.Metric)
	if !ok {
		return kind{}, source.Metric{}, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	return k, m, nil
}

// GetMetricByName implements CustomMetricsProvider.
func (p *Provider) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	k, m, isForecast, err := p.lookupForecast(info)
	if err != nil {
		return nil, err
	}
	notFound := cmprovider.NewMetricNotFoundForError(k.gr, info.Metric, name.Name)
	var s source.Sample
	var ok bool
	switch k.kind {
	case "Pod":
		pod := p.cache.Pod(name.Namespace, name.Name)
		if pod == nil || !cluster.Running(pod) {
			return nil, notFound
		}
		vals, oks, err := p.src.PodValues(ctx, m, []source.Pod{podRef(pod)}, metricSelector)
		if err == nil && isForecast {
			err = p.podForecasts(ctx, []*corev1.Pod{pod}, vals, oks, metricSelector)
		}
		if err != nil {
			return nil, internal(err)
		}
		s, ok = vals[0], oks[0]
	case "Node":
		if !p.cache.HasNode(name.Name) {
			return nil, notFound
		}
		vals, oks, err := p.src.NodeValues(ctx, m, []string{name.Name}, metricSelector)
		if err != nil {
			return nil, internal(err)
		}
		s, ok = vals[0], oks[0]
	default:
		w, found, err := p.cache.Workload(k.kind, name.Namespace, name.Name)
		if err != nil {
			return nil, internal(err)
		}
		if !found {
			return nil, notFound
		}
		if isForecast {
			var n int
			s, _, n, err = p.workloadForecast(ctx, w, metricSelector)
			ok = n > 0
		} else {
			s, ok, err = p.workloadValue(ctx, m, w, metricSelector)
		}
		if err != nil {
			return nil, internal(err)
		}
	}
	if !ok {
		return nil, notFound
	}
	v := metricValue(k, name.Namespace, name.Name, info.Metric, labelSelector(metricSelector), s)
	return &v, nil
}

// GetMetricBySelector implements CustomMetricsProvider.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	k, m, isForecast, err := p.lookupForecast(info)
	if err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{}
	// One selector for every item: parsed once, not per pod.
	ls := labelSelector(metricSelector)
	switch k.kind {
	case "Pod":
		var pods []source.Pod
		var objs []*corev1.Pod
		for _, pod := range p.cache.Pods(namespace, selector) {
			if cluster.Running(pod) {
				pods = append(pods, podRef(pod))
				objs = append(objs, pod)
			}
		}
		vals, oks, err := p.src.PodValues(ctx, m, pods, metricSelector)
		if err == nil && isForecast {
			err = p.podForecasts(ctx, objs, vals, oks, metricSelector)
		}
		if err != nil {
			return nil, internal(err)
		}
		list.Items = make([]custom_metrics.MetricValue, 0, len(pods))
		for i, pod := range pods {
			if oks[i] {
				list.Items = append(list.Items, metricValue(k, pod.Namespace, pod.Name, info.Metric, ls, vals[i]))
			}
		}
	case "Node":
		nodes := p.cache.Nodes(selector)
		vals, oks, err := p.src.NodeValues(ctx, m, nodes, metricSelector)
		if err != nil {
			return nil, internal(err)
		}
		for i, n := range nodes {
			if oks[i] {
				list.Items = append(list.Items, metricValue(k, "", n, info.Metric, ls, vals[i]))
			}
		}
	default:
		ws, err := p.cache.Workloads(k.kind, namespace, selector)
		if err != nil {
			return nil, internal(err)
		}
		for _, w := range ws {
			var s source.Sample
			var ok bool
			if isForecast {
				var n int
				s, _, n, err = p.workloadForecast(ctx, w, metricSelector)
				ok = n > 0
			} else {
				s, ok, err = p.workloadValue(ctx, m, w, metricSelector)
			}
			if err != nil {
				return nil, internal(err)
			}
			if ok {
				list.Items = append(list.Items, metricValue(k, w.Namespace, w.Name, info.Metric, ls, s))
			}
		}
	}
	return list, nil
}

// workloadValue sums m over the workload's running pods that have a value.
func (p *Provider) workloadValue(ctx context.Context, m source.Metric, w cluster.Workload, sel labels.Selector) (source.Sample, bool, error) {
	var pods []source.Pod
	for _, pod := range p.cache.WorkloadPods(w) {
		if cluster.Running(pod) {
			pods = append(pods, podRef(pod))
		}
	}
	vals, oks, err := p.src.PodValues(ctx, m, pods, sel)
	if err != nil {
		return source.Sample{}, false, err
	}
	agg, n := aggregate(source.Metric{Kind: source.Sum}, vals, oks)
	return agg, n > 0, nil
}

// aggregate combines samples into one: Mean metrics are averaged, others
// summed. The timestamp is the oldest of the samples (the result is true as
// of then) and the window the shortest one.
func aggregate(m source.Metric, vals []source.Sample, oks []bool) (source.Sample, int) {
	var out source.Sample
	n := 0
	for i, v := range vals {
		if !oks[i] {
			continue
		}
		out.Value += v.Value
		if n == 0 || v.Timestamp.Before(out.Timestamp) {
			out.Timestamp = v.Timestamp
		}
		if n == 0 || v.Window < out.Window {
			out.Window = v.Window
		}
		n++
	}
	if m.Kind == source.Mean && n > 0 {
		out.Value /= float64(n)
	}
	return out, n
}

// ListAllMetrics implements CustomMetricsProvider.
func (p *Provider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	var out []cmprovider.CustomMetricInfo
	for _, name := range sortedKeys(source.PodMetrics) {
		out = append(out, cmprovider.CustomMetricInfo{GroupResource: podsGR, Namespaced: true, Metric: name})
	}
	for _, name := range sortedKeys(source.NodeMetrics) {
		out = append(out, cmprovider.CustomMetricInfo{GroupResource: nodesGR, Metric: name})
	}
	for _, gr := range []schema.GroupResource{deploymentsGR, statefulSetsGR} {
		for _, name := range workloadMetrics {
			out = append(out, cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: true, Metric: name})
		}
	}
	return append(out, p.forecastMetrics()...)
}

// GetExternalMetric implements ExternalMetricsProvider: the pod metric
// aggregated over the namespace's running pods.
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	m, ok := source.PodMetrics[info.Metric]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "external.metrics.k8s.io", Resource: info.Metric}, namespace)
	}
	var pods []source.Pod
	for _, pod := range p.cache.Pods(namespace, nil) {
		if cluster.Running(pod) {
			pods = append(pods, podRef(pod))
		}
	}
	vals, oks, err := p.src.PodValues(ctx, m, pods, metricSelector)
	if err != nil {
		return nil, internal(err)
	}
	agg, n := aggregate(m, vals, oks)
	if n == 0 {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "external.metrics.k8s.io", Resource: info.Metric},
			fmt.Sprintf("%s (no pod of namespace %q has a current value)", info.Metric, namespace))
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName:    info.Metric,
		MetricLabels:  equalityLabels(metricSelector),
		Timestamp:     metav1.NewTime(agg.Timestamp),
		WindowSeconds: windowSeconds(agg.Window),
		Value:         quantity(agg.Value),
	}}}, nil
}

// ListAllExternalMetrics implements ExternalMetricsProvider.
func (p *Provider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	var out []cmprovider.ExternalMetricInfo
	for _, name := range sortedKeys(source.PodMetrics) {
		out = append(out, cmprovider.ExternalMetricInfo{Metric: name})
	}
	return out
}

func podRef(p *corev1.Pod) source.Pod {
	return source.Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName}
}

// metricValue is one item; ls is the metric selector as the API shows it
// (shared, never modified).
func metricValue(k kind, namespace, name, metric string, ls *metav1.LabelSelector, s source.Sample) custom_metrics.MetricValue {
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: k.kind, APIVersion: k.apiVersion, Namespace: namespace, Name: name},
		Metric:          custom_metrics.MetricIdentifier{Name: metric, Selector: ls},
		Timestamp:       metav1.NewTime(s.Timestamp),
		WindowSeconds:   windowSeconds(s.Window),
		Value:           quantity(s.Value),
	}
}

// labelSelector is sel as the API shows it, nil when it selects everything.
func labelSelector(sel labels.Selector) *metav1.LabelSelector {
	if sel == nil || sel.Empty() {
		return nil
	}
	ls, err := metav1.ParseToLabelSelector(sel.String())
	if err != nil {
		return nil
	}
	return ls
}

// windowSeconds is the window rounded to whole seconds (at least 1), nil
// for an instantaneous value.
func windowSeconds(w time.Duration) *int64 {
	if w <= 0 {
		return nil
	}
	s := max(int64(math.Round(w.Seconds())), 1)
	return &s
}

// quantity renders v exactly to the milli-unit, or as a whole number when
// it is too large for milli-units.
func quantity(v float64) resource.Quantity {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return *resource.NewQuantity(0, resource.DecimalSI)
	}
	if math.Abs(v) < 9e12 {
		return *resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
	}
	return *resource.NewQuantity(int64(math.Round(v)), resource.DecimalSI)
}

// equalityLabels reports the label=value requirements of sel.
func equalityLabels(sel labels.Selector) map[string]string {
	if sel == nil {
		return nil
	}
	reqs, _ := sel.Requirements()
	var out map[string]string
	for _, r := range reqs {
		if vals := r.Values().List(); len(vals) == 1 && (r.Operator() == "=" || r.Operator() == "==" || r.Operator() == "in") {
			if out == nil {
				out = map[string]string{}
			}
			out[r.Key()] = vals[0]
		}
	}
	return out
}

func internal(err error) error { return apierrors.NewInternalError(err) }

func sortedKeys(m map[string]source.Metric) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
