package promsource

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

func TestPodValues(t *testing.T) {
	pods := []source.Pod{
		{Namespace: "ns-a", Name: "p1"},
		{Namespace: "ns-b", Name: "p2"},
		{Namespace: "ns-a", Name: "unknown"},
		{Namespace: "ns-a", Name: "p1"}, // asked twice
	}
	tests := []struct {
		name      string
		metric    source.Metric
		pods      []source.Pod
		sel       labels.Selector
		body      string
		wantQuery string
		want      []source.Sample
		wantOK    []bool
	}{
		{
			name:   "rate across namespaces",
			metric: rps,
			pods:   pods,
			sel:    labels.SelectorFromSet(labels.Set{"model": "m"}),
			body: vector(
				result(`{"namespace":"ns-a","pod":"p1"}`, ts, "12.5"),
				result(`{"namespace":"ns-b","pod":"p2"}`, ts, "3"),
				// In the cross product of the matchers, not asked for.
				result(`{"namespace":"ns-a","pod":"p2"}`, ts, "99"),
			),
			wantQuery: `sum by (namespace, pod) (rate(inference_requests_total{namespace=~"ns-a|ns-b",pod=~"p1|p2|unknown",model="m"}[1m]))`,
			want: []source.Sample{
				{Value: 12.5, Timestamp: tsTime, Window: time.Minute},
				{Value: 3, Timestamp: tsTime, Window: time.Minute},
				{},
				{Value: 12.5, Timestamp: tsTime, Window: time.Minute},
			},
			wantOK: []bool{true, true, false, true},
		},
		{
			name:      "gauge sum, one pod",
			metric:    queue,
			pods:      pods[:1],
			body:      vector(result(`{"namespace":"ns-a","pod":"p1"}`, ts, "4")),
			wantQuery: `sum by (namespace, pod) (inference_queue_depth{namespace="ns-a",pod="p1"})`,
			want:      []source.Sample{{Value: 4, Timestamp: tsTime}},
			wantOK:    []bool{true},
		},
		{
			name:   "agent mean, NaN and Inf are no value",
			metric: podGU,
			pods:   pods[:3],
			body: vector(
				result(`{"namespace":"ns-a","pod":"p1"}`, ts, "NaN"),
				result(`{"namespace":"ns-b","pod":"p2"}`, ts, "+Inf"),
				result(`{"namespace":"ns-a","pod":"unknown"}`, ts, "-Inf"),
			),
			wantQuery: `avg by (namespace, pod) (gpufleet_pod_gpu_utilization_ratio{namespace=~"ns-a|ns-b",pod=~"p1|p2|unknown"})`,
			want:      make([]source.Sample, 3),
			wantOK:    []bool{false, false, false},
		},
		{
			name:      "no result",
			metric:    queue,
			pods:      pods[:2],
			body:      vector(),
			wantQuery: `sum by (namespace, pod) (inference_queue_depth{namespace=~"ns-a|ns-b",pod=~"p1|p2"})`,
			want:      make([]source.Sample, 2),
			wantOK:    []bool{false, false},
		},
		{
			name:   "integer timestamp, native histogram",
			metric: queue,
			pods:   pods[:2],
			body: vector(
				result(`{"namespace":"ns-a","pod":"p1"}`, "1700000000", "1e3"),
				`{"metric":{"namespace":"ns-b","pod":"p2"},"histogram":[1700000000,{"count":"1","sum":"1"}]}`,
			),
			wantQuery: `sum by (namespace, pod) (inference_queue_depth{namespace=~"ns-a|ns-b",pod=~"p1|p2"})`,
			want:      []source.Sample{{Value: 1000, Timestamp: time.Unix(1700000000, 0)}, {}},
			wantOK:    []bool{true, false},
		},
		{
			name:      "names needing quotes",
			metric:    queue,
			pods:      []source.Pod{{Namespace: "ns", Name: "a.b"}, {Namespace: "ns", Name: `c"d`}},
			body:      vector(result(`{"namespace":"ns","pod":"c\"d"}`, ts, "2")),
			wantQuery: `sum by (namespace, pod) (inference_queue_depth{namespace="ns",pod=~"a\\.b|c\"d"})`,
			want:      []source.Sample{{}, {Value: 2, Timestamp: tsTime}},
			wantOK:    []bool{false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{status: http.StatusOK, body: tt.body}
			s, _ := f.start(t)
			got, ok, err := s.PodValues(context.Background(), tt.metric, tt.pods, tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tt.wantQuery}, f.queries()); diff != "" {
				t.Errorf("queries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOK, ok); diff != "" {
				t.Errorf("ok (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeValues(t *testing.T) {
	f := &fakeProm{status: http.StatusOK, body: vector(
		result(`{"node":"n2"}`, ts, "0.25"),
		result(`{"node":"n1"}`, ts, "0.5"),
	)}
	s, _ := f.start(t)
	sel := labels.SelectorFromSet(labels.Set{"gpu": "0"})
	got, ok, err := s.NodeValues(context.Background(), nodeG, []string{"n1", "n2", "n3"}, sel)
	if err != nil {
		t.Fatal(err)
	}
	wantQ := []string{`avg by (node) (gpufleet_gpu_utilization_ratio{node=~"n1|n2|n3",gpu="0"})`}
	if diff := cmp.Diff(wantQ, f.queries()); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
	want := []source.Sample{{Value: 0.5, Timestamp: tsTime}, {Value: 0.25, Timestamp: tsTime}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, true, false}, ok); diff != "" {
		t.Errorf("ok (-want +got):\n%s", diff)
	}
}

func TestCustomLabels(t *testing.T) {
	f := &fakeProm{status: http.StatusOK, body: vector(
		result(`{"kubernetes_namespace":"ns","kubernetes_pod_name":"p"}`, ts, "7"),
	)}
	s, _ := f.start(t, WithNamespaceLabel("kubernetes_namespace"), WithPodLabel("kubernetes_pod_name"), WithRateWindow(30*time.Second))
	got, ok, err := s.PodValues(context.Background(), rps, []source.Pod{{Namespace: "ns", Name: "p"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantQ := []string{`sum by (kubernetes_namespace, kubernetes_pod_name) (rate(inference_requests_total{kubernetes_namespace="ns",kubernetes_pod_name="p"}[30s]))`}
	if diff := cmp.Diff(wantQ, f.queries()); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
	if want := (source.Sample{Value: 7, Timestamp: tsTime, Window: 30 * time.Second}); !ok[0] || got[0] != want {
		t.Errorf("got %+v ok %v, want %+v", got[0], ok[0], want)
	}
	// The configured labels are the reserved ones.
	_, _, err = s.PodValues(context.Background(), rps, []source.Pod{{Namespace: "ns", Name: "p"}},
		labels.SelectorFromSet(labels.Set{"kubernetes_pod_name": "x"}))
	if err == nil || !strings.Contains(err.Error(), `"kubernetes_pod_name" cannot be selected`) {
		t.Errorf("selecting the pod label: error = %v", err)
	}
}

func TestNoQuery(t *testing.T) {
	f := &fakeProm{status: http.StatusOK, body: vector()}
	s, _ := f.start(t)
	ctx := context.Background()
	pods := []source.Pod{{Namespace: "ns", Name: "p"}}

	v, ok, err := s.PodValues(ctx, rps, nil, nil)
	if err != nil || len(v) != 0 || len(ok) != 0 {
		t.Errorf("no pods: %v %v %v", v, ok, err)
	}
	v, ok, err = s.NodeValues(ctx, nodeG, []string{}, nil)
	if err != nil || len(v) != 0 || len(ok) != 0 {
		t.Errorf("no nodes: %v %v %v", v, ok, err)
	}
	v, ok, err = s.PodValues(ctx, rps, pods, labels.Nothing())
	if err != nil || len(v) != 1 || len(ok) != 1 || ok[0] {
		t.Errorf("selector selecting nothing: %v %v %v", v, ok, err)
	}

	for name, call := range map[string]func() error{
		"node metric for pods": func() error { _, _, err := s.PodValues(ctx, nodeG, pods, nil); return err },
		"pod metric for nodes": func() error { _, _, err := s.NodeValues(ctx, podGU, []string{"n"}, nil); return err },
		"pod without a name": func() error {
			_, _, err := s.PodValues(ctx, rps, []source.Pod{{Namespace: "ns"}}, nil)
			return err
		},
		"pod without a namespace": func() error {
			_, _, err := s.PodValues(ctx, rps, []source.Pod{{Name: "p"}}, nil)
			return err
		},
		"node without a name": func() error { _, _, err := s.NodeValues(ctx, nodeG, []string{""}, nil); return err },
		"bad selector": func() error {
			_, _, err := s.PodValues(ctx, rps, pods, labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": "x"}))
			return err
		},
		"pod name not UTF-8": func() error {
			_, _, err := s.PodValues(ctx, rps, []source.Pod{{Namespace: "ns", Name: "\xff"}}, nil)
			return err
		},
		"bad series": func() error {
			_, _, err := s.NodeValues(ctx, source.Metric{Name: "x", Series: "a b", Scope: source.ScopeNode}, []string{"n"}, nil)
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if q := f.queries(); len(q) != 0 {
		t.Errorf("sent queries %q, want none", q)
	}
}
