package promsource_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/promtest"
	"github.com/gpufleet/gpufleet/pkg/adapter/promsource"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// counter is a counter series that grows at a fixed rate.
type counter struct {
	labels string
	rate   float64
}

// gauge is a gauge series with a fixed value.
type gauge struct {
	labels string
	value  float64
}

// startExporter serves Prometheus text at http://addr/metrics on loopback:
// each counter's value is its rate times the seconds since the exporter
// started, computed when it is scraped.
func startExporter(t *testing.T, counters map[string][]counter, gauges map[string][]gauge) string {
	t.Helper()
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		elapsed := time.Since(start).Seconds()
		var b strings.Builder
		for name, series := range counters {
			fmt.Fprintf(&b, "# TYPE %s counter\n", name)
			for _, c := range series {
				fmt.Fprintf(&b, "%s{%s} %g\n", name, c.labels, c.rate*elapsed)
			}
		}
		for name, series := range gauges {
			fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
			for _, g := range series {
				fmt.Fprintf(&b, "%s{%s} %g\n", name, g.labels, g.value)
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestIntegrationPrometheusSource(t *testing.T) {
	const (
		requests = "inference_requests_total"
		queue    = "inference_queue_depth"
		podUtil  = "gpufleet_pod_gpu_utilization_ratio"
		podMem   = "gpufleet_pod_gpu_memory_used_bytes"
		nodeUtil = "gpufleet_gpu_utilization_ratio"
		nodeMem  = "gpufleet_gpu_memory_used_bytes"
		window   = 5 * time.Second
	)
	p1 := startExporter(t,
		map[string][]counter{requests: {{`model="m",code="200"`, 10}, {`model="other",code="200"`, 3}}},
		map[string][]gauge{queue: {{`model="m"`, 4}, {`model="other"`, 2}}})
	p2 := startExporter(t,
		map[string][]counter{requests: {{`model="m",code="200"`, 4}}},
		map[string][]gauge{queue: {{`model="m"`, 1}}})
	agent1 := startExporter(t, nil, map[string][]gauge{
		podUtil: {
			{`namespace="ns-a",pod="p1",gpu="0"`, 0.5},
			{`namespace="ns-a",pod="p1",gpu="1"`, 0.75},
			{`namespace="ns-b",pod="p2",gpu="2"`, 0.25},
		},
		podMem: {
			{`namespace="ns-a",pod="p1",gpu="0"`, 1e9},
			{`namespace="ns-a",pod="p1",gpu="1"`, 2e9},
		},
		nodeUtil: {{`gpu="0"`, 0.5}, {`gpu="1"`, 0.75}, {`gpu="2"`, 0.25}, {`gpu="3"`, 0}},
		nodeMem:  {{`gpu="0"`, 1e9}, {`gpu="1"`, 2e9}, {`gpu="2"`, 0}, {`gpu="3"`, 0}},
	})
	agent2 := startExporter(t, nil, map[string][]gauge{
		nodeUtil: {{`gpu="0"`, 0.1}},
		nodeMem:  {{`gpu="0"`, 5e8}},
	})
	prom := promtest.Start(t, promtest.Config{
		ScrapeInterval: time.Second,
		Targets: []promtest.Target{
			{Addr: p1, Labels: map[string]string{"namespace": "ns-a", "pod": "p1"}},
			{Addr: p2, Labels: map[string]string{"namespace": "ns-b", "pod": "p2"}},
			{Addr: agent1, Labels: map[string]string{"node": "node-1"}, Agent: true},
			{Addr: agent2, Labels: map[string]string{"node": "node-2"}, Agent: true},
		},
	})
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := prom.WaitForTargetsUp(ctx, 4); err != nil {
		t.Fatal(err)
	}
	t.Logf("targets up %v after Prometheus was ready", time.Since(started))
	src, err := promsource.New(prom.URL(), promsource.WithRateWindow(window))
	if err != nil {
		t.Fatal(err)
	}

	pods := []source.Pod{
		{Namespace: "ns-a", Name: "p1"},
		{Namespace: "ns-b", Name: "p2"},
		{Namespace: "ns-a", Name: "unknown"},
	}
	rps := source.PodMetrics[source.RequestsPerSecond]
	model := func(expr string) labels.Selector {
		sel, err := labels.Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		return sel
	}

	// rate() divides by the whole window, so the rates reach the exporters'
	// once Prometheus holds a window of samples: poll until they do.
	var values []source.Sample
	var ok []bool
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		values, ok, err = src.PodValues(ctx, rps, pods, model("model=m"))
		if err != nil {
			return false, err
		}
		return ok[0] && ok[1] && near(values[0].Value, 10) && near(values[1].Value, 4), nil
	})
	if err != nil {
		t.Fatalf("requests_per_second{model=m} never near [10 4]: %v; last values %+v ok %v\nprometheus log:\n%s", err, values, ok, prom.LogTail(20))
	}
	t.Logf("rates near the exporters' %v after Prometheus was ready: %+v", time.Since(started), values[:2])
	if ok[2] {
		t.Errorf("a pod Prometheus does not know has a value: %+v", values[2])
	}
	for i, v := range values[:2] {
		if v.Window != window || time.Since(v.Timestamp).Abs() > 10*time.Second {
			t.Errorf("pod %d: window %v timestamp %v, want %v and about now", i, v.Window, v.Timestamp, window)
		}
	}

	for _, tt := range []struct {
		sel    labels.Selector
		want   []float64
		wantOK []bool
	}{
		{sel: model("model=other"), want: []float64{3, 0, 0}, wantOK: []bool{true, false, false}},
		{sel: nil, want: []float64{13, 4, 0}, wantOK: []bool{true, true, false}},
		{sel: model("model in (m, other)"), want: []float64{13, 4, 0}, wantOK: []bool{true, true, false}},
		{sel: model("model notin (m)"), want: []float64{3, 0, 0}, wantOK: []bool{true, false, false}},
		{sel: model("code=200,model!=m"), want: []float64{3, 0, 0}, wantOK: []bool{true, false, false}},
		{sel: model("model=absent"), want: []float64{0, 0, 0}, wantOK: []bool{false, false, false}},
	} {
		got, ok, err := src.PodValues(ctx, rps, pods, tt.sel)
		if err != nil {
			t.Fatalf("selector %v: %v", tt.sel, err)
		}
		for i := range pods {
			if ok[i] != tt.wantOK[i] || ok[i] && !near(got[i].Value, tt.want[i]) {
				t.Errorf("selector %v, pod %v: got %v (ok %v), want %v (ok %v) within 10%%", tt.sel, pods[i], got[i].Value, ok[i], tt.want[i], tt.wantOK[i])
			}
		}
	}

	gauges := []struct {
		name   string
		nodes  []string // NodeValues when set, else PodValues of pods
		metric source.Metric
		sel    labels.Selector
		want   []float64
		wantOK []bool
	}{
		{name: "queue depth", metric: source.PodMetrics[source.InferenceQueueDepth],
			want: []float64{6, 1, 0}, wantOK: []bool{true, true, false}},
		{name: "queue depth of m", metric: source.PodMetrics[source.InferenceQueueDepth], sel: model("model=m"),
			want: []float64{4, 1, 0}, wantOK: []bool{true, true, false}},
		{name: "pod GPU utilization", metric: source.PodMetrics[source.GPUUtilization],
			want: []float64{0.625, 0.25, 0}, wantOK: []bool{true, true, false}},
		{name: "pod GPU memory", metric: source.PodMetrics[source.GPUMemoryUsedBytes],
			want: []float64{3e9, 0, 0}, wantOK: []bool{true, false, false}},
		{name: "node GPU utilization", metric: source.NodeMetrics[source.GPUUtilization], nodes: []string{"node-1", "node-2", "node-3"},
			want: []float64{0.375, 0.1, 0}, wantOK: []bool{true, true, false}},
		{name: "node GPU 0 utilization", metric: source.NodeMetrics[source.GPUUtilization], nodes: []string{"node-1", "node-2"},
			sel: model("gpu=0"), want: []float64{0.5, 0.1}, wantOK: []bool{true, true}},
		{name: "node GPU memory", metric: source.NodeMetrics[source.GPUMemoryUsedBytes], nodes: []string{"node-2", "node-1"},
			want: []float64{5e8, 3e9}, wantOK: []bool{true, true}},
	}
	for _, g := range gauges {
		var got []source.Sample
		var ok []bool
		var err error
		if g.nodes != nil {
			got, ok, err = src.NodeValues(ctx, g.metric, g.nodes, g.sel)
		} else {
			got, ok, err = src.PodValues(ctx, g.metric, pods, g.sel)
		}
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
			continue
		}
		var values []float64
		for i, s := range got {
			values = append(values, s.Value)
			if ok[i] && s.Window != 0 {
				t.Errorf("%s: object %d has window %v, want 0 for a gauge", g.name, i, s.Window)
			}
		}
		// Prometheus' avg() is an incremental mean: allow rounding.
		if diff := cmp.Diff(g.want, values, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("%s: values (-want +got):\n%s", g.name, diff)
		}
		if diff := cmp.Diff(g.wantOK, ok); diff != "" {
			t.Errorf("%s: ok (-want +got):\n%s", g.name, diff)
		}
	}
}

// near reports whether got is within 10% of want.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 0.1*want
}
