package provider

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
)

// stubForecaster predicts web 12/s above its reactive rate and db half of
// it (a wrong forecast the provider must not serve).
type stubForecaster struct{ cache *cluster.Cache }

func (s stubForecaster) Forecast(w cluster.Workload, reactive float64) float64 {
	if w.Name == "web" {
		return reactive + 12
	}
	return reactive / 2
}

func (s stubForecaster) Owner(p *corev1.Pod) (cluster.Workload, bool) {
	kind, name := s.cache.Owner(p)
	w, found, err := s.cache.Workload(kind, p.Namespace, name)
	return w, found && err == nil
}

func TestForecastExposition(t *testing.T) {
	base, _ := newTestProvider(t)
	p := New(base.cache, base.src, WithForecaster(stubForecaster{base.cache}))
	ctx := t.Context()
	podsInfo := cmprovider.CustomMetricInfo{GroupResource: pods, Namespaced: true, Metric: RequestsPerSecondForecast}
	deployInfo := cmprovider.CustomMetricInfo{GroupResource: deployments, Namespaced: true, Metric: RequestsPerSecondForecast}
	setsInfo := cmprovider.CustomMetricInfo{GroupResource: statefulSets, Namespaced: true, Metric: RequestsPerSecondForecast}

	// web: reactive 10 + 5.5 on two pods with values, forecast 27.5: each
	// pod gets half of the 12/s increase. db: the forecast (1.5) is below
	// the reactive 3: served as 3, pods unchanged.
	list, err := p.GetMetricBySelector(ctx, "ml", parseSel(t, "app in (web, db)"), podsInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := RequestsPerSecondForecast
	want := []custom_metrics.MetricValue{
		podValue("db-0", m, "1", t0.Add(-time.Second), int64p(3)),
		podValue("db-1", m, "2", t0.Add(time.Second), int64p(2)),
		podValue("web-1-a", m, "16", t0.Add(time.Second), int64p(2)),
		podValue("web-1-b", m, "11500m", t0, int64p(2)),
	}
	if diff := cmp.Diff(want, list.Items, quantityEqual); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	web, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ml", Name: "web"}, deployInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(workloadValue("Deployment", "web", m, "27500m", t0, int64p(2)), *web, quantityEqual); diff != "" {
		t.Errorf("Deployment web (-want +got):\n%s", diff)
	}
	db, err := p.GetMetricBySelector(ctx, "ml", parseSel(t, "app=db"), setsInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]custom_metrics.MetricValue{workloadValue("StatefulSet", "db", m, "3", t0.Add(-time.Second), int64p(2))}, db.Items, quantityEqual); diff != "" {
		t.Errorf("StatefulSet db (-want +got):\n%s", diff)
	}
	// One pod by name: its own rate plus its share.
	a, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ml", Name: "web-1-a"}, podsInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Value.MilliValue() != 16000 {
		t.Errorf("web-1-a by name: %v, want 16", a.Value.String())
	}
	// Nodes have no forecast; without a forecaster nothing does.
	if _, err := p.GetMetricByName(ctx, types.NamespacedName{Name: "node-a"}, cmprovider.CustomMetricInfo{GroupResource: nodes, Metric: m}, nil); err == nil {
		t.Error("a node's forecast was served")
	}
	if _, err := base.GetMetricByName(ctx, types.NamespacedName{Namespace: "ml", Name: "web"}, deployInfo, nil); err == nil {
		t.Error("a forecast was served without a forecaster")
	}
	var listed []string
	for _, i := range p.ListAllMetrics() {
		if i.Metric == m {
			listed = append(listed, i.GroupResource.String())
		}
	}
	if diff := cmp.Diff([]string{"pods", "deployments.apps", "statefulsets.apps"}, listed); diff != "" {
		t.Errorf("ListAllMetrics lists the forecast for (-want +got):\n%s", diff)
	}
}
