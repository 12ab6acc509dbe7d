package provider

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// call is one recorded Source call.
type call struct {
	Metric   string
	Pods     []source.Pod
	Nodes    []string
	Selector string
}

// fakeSource returns canned samples by metric name and then "ns/name" (pods)
// or node name, and records its calls.
type fakeSource struct {
	values map[string]map[string]source.Sample
	err    error

	mu    sync.Mutex
	calls []call
}

var _ source.Source = &fakeSource{}

func selString(sel labels.Selector) string {
	if sel == nil {
		return "<nil>"
	}
	return sel.String()
}

func (f *fakeSource) PodValues(_ context.Context, m source.Metric, pods []source.Pod, sel labels.Selector) ([]source.Sample, []bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{Metric: m.Name, Pods: pods, Selector: selString(sel)})
	f.mu.Unlock()
	if f.err != nil {
		return nil, nil, f.err
	}
	vals, oks := make([]source.Sample, len(pods)), make([]bool, len(pods))
	for i, p := range pods {
		vals[i], oks[i] = f.values[m.Name][p.Namespace+"/"+p.Name]
	}
	return vals, oks, nil
}

func (f *fakeSource) NodeValues(_ context.Context, m source.Metric, nodes []string, sel labels.Selector) ([]source.Sample, []bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{Metric: m.Name, Nodes: nodes, Selector: selString(sel)})
	f.mu.Unlock()
	if f.err != nil {
		return nil, nil, f.err
	}
	vals, oks := make([]source.Sample, len(nodes)), make([]bool, len(nodes))
	for i, n := range nodes {
		vals[i], oks[i] = f.values[m.Name][n]
	}
	return vals, oks, nil
}

func (f *fakeSource) takeCalls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func ctrl(kind, name string, uid types.UID) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: new(true)}}
}

type podOpt func(*corev1.Pod)

func testPod(ns, name, node string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func app(a string) podOpt                    { return func(p *corev1.Pod) { p.Labels = map[string]string{"app": a} } }
func owned(r []metav1.OwnerReference) podOpt { return func(p *corev1.Pod) { p.OwnerReferences = r } }
func pending(p *corev1.Pod)                  { p.Status.Phase = corev1.PodPending }
func deleting(p *corev1.Pod)                 { now := metav1.Now(); p.DeletionTimestamp = &now }

// newTestProvider is a provider over a cache of:
//
//	ml/web (Deployment, app=web) -> ReplicaSet web-1 -> pods web-1-a..e
//	ml/idle (Deployment) with no pods
//	ml/db (StatefulSet, app=db) -> pods db-0..2
//	other/x, a pod of another namespace
//	nodes node-a, node-b (gpu=h100) and node-c (gpu=a100)
//
// and a fake source with values for some of them.
func newTestProvider(t *testing.T) (*Provider, *fakeSource) {
	t.Helper()
	rs := ctrl("ReplicaSet", "web-1", "uid-web-1")
	sts := ctrl("StatefulSet", "db", "uid-db")
	node := func(name, gpu string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"gpu": gpu}}}
	}
	objs := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web", UID: "uid-web", Labels: map[string]string{"app": "web"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "idle", UID: "uid-idle", Labels: map[string]string{"app": "idle"}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web-1", UID: "uid-web-1", OwnerReferences: ctrl("Deployment", "web", "uid-web")}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "db", UID: "uid-db", Labels: map[string]string{"app": "db"}}},
		testPod("ml", "web-1-a", "node-a", app("web"), owned(rs)),
		testPod("ml", "web-1-b", "node-b", app("web"), owned(rs)),
		testPod("ml", "web-1-c", "", app("web"), owned(rs), pending),
		testPod("ml", "web-1-d", "node-a", app("web"), owned(rs)),
		testPod("ml", "web-1-e", "node-a", app("web"), owned(rs), deleting),
		testPod("ml", "db-0", "node-a", app("db"), owned(sts)),
		testPod("ml", "db-1", "node-b", app("db"), owned(sts)),
		testPod("ml", "db-2", "node-b", app("db"), owned(sts)),
		testPod("other", "x", "node-c", app("web")),
		node("node-a", "h100"), node("node-b", "h100"), node("node-c", "a100"),
	}
	c, err := cluster.New(fake.NewClientset(objs...))
	if err != nil {
		t.Fatalf("cluster.New: %v", err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	src := &fakeSource{values: map[string]map[string]source.Sample{
		source.RequestsPerSecond: {
			"ml/web-1-a": {Value: 10, Timestamp: t0.Add(time.Second), Window: 2400 * time.Millisecond},
			"ml/web-1-b": {Value: 5.5, Timestamp: t0, Window: 1600 * time.Millisecond},
			"ml/web-1-c": {Value: 100, Timestamp: t0, Window: time.Second},  // pending: never asked
			"ml/web-1-e": {Value: 1000, Timestamp: t0, Window: time.Second}, // being deleted: never asked
			"ml/db-0":    {Value: 1, Timestamp: t0.Add(-time.Second), Window: 3 * time.Second},
			"ml/db-1":    {Value: 2, Timestamp: t0.Add(time.Second), Window: 2 * time.Second},
			"other/x":    {Value: 7, Timestamp: t0, Window: time.Second},
		},
		source.InferenceQueueDepth: {
			"ml/web-1-a": {Value: 3, Timestamp: t0},
			"ml/web-1-b": {Value: 4, Timestamp: t0},
		},
		source.GPUUtilization: {
			"ml/web-1-a": {Value: 0.5, Timestamp: t0},
			"ml/web-1-b": {Value: 0.75, Timestamp: t0.Add(time.Second)},
			"node-a":     {Value: 0.25, Timestamp: t0},
			"node-b":     {Value: 0.5, Timestamp: t0},
		},
		source.GPUMemoryUsedBytes: {
			"node-a": {Value: 3.2e9, Timestamp: t0},
		},
	}}
	return New(c, src), src
}

var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func int64p(v int64) *int64 { return &v }

func podValue(name, metric string, value string, ts time.Time, window *int64) custom_metrics.MetricValue {
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "ml", Name: name},
		Metric:          custom_metrics.MetricIdentifier{Name: metric},
		Timestamp:       metav1.NewTime(ts),
		WindowSeconds:   window,
		Value:           resource.MustParse(value),
	}
}

func parseSel(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

var (
	pods         = schema.GroupResource{Resource: "pods"}
	nodes        = schema.GroupResource{Resource: "nodes"}
	deployments  = schema.GroupResource{Group: "apps", Resource: "deployments"}
	statefulSets = schema.GroupResource{Group: "apps", Resource: "statefulsets"}
)

func TestGetMetricByName(t *testing.T) {
	p, src := newTestProvider(t)
	web1a := source.Pod{Namespace: "ml", Name: "web-1-a", Node: "node-a"}
	tests := []struct {
		name      string
		gr        schema.GroupResource
		object    types.NamespacedName
		metric    string
		sel       string
		want      *custom_metrics.MetricValue
		wantErr   func(error) bool
		wantCalls []call
	}{
		{
			name:      "pod rate: window rounded to seconds",
			gr:        pods,
			object:    types.NamespacedName{Namespace: "ml", Name: "web-1-a"},
			metric:    source.RequestsPerSecond,
			want:      new(podValue("web-1-a", source.RequestsPerSecond, "10", t0.Add(time.Second), int64p(2))),
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{web1a}, Selector: ""}},
		},
		{
			name:      "pod gauge has no window; singular resource name",
			gr:        schema.GroupResource{Resource: "pod"},
			object:    types.NamespacedName{Namespace: "ml", Name: "web-1-b"},
			metric:    source.GPUUtilization,
			want:      new(podValue("web-1-b", source.GPUUtilization, "750m", t0.Add(time.Second), nil)),
			wantCalls: []call{{Metric: source.GPUUtilization, Pods: []source.Pod{{Namespace: "ml", Name: "web-1-b", Node: "node-b"}}, Selector: ""}},
		},
		{
			name:   "metric selector passed to the source and echoed",
			gr:     pods,
			object: types.NamespacedName{Namespace: "ml", Name: "web-1-a"},
			metric: source.InferenceQueueDepth,
			sel:    "model=bert",
			want: func() *custom_metrics.MetricValue {
				v := podValue("web-1-a", source.InferenceQueueDepth, "3", t0, nil)
				v.Metric.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"model": "bert"}}
				return &v
			}(),
			wantCalls: []call{{Metric: source.InferenceQueueDepth, Pods: []source.Pod{web1a}, Selector: "model=bert"}},
		},
		{
			name:      "running pod without a value",
			gr:        pods,
			object:    types.NamespacedName{Namespace: "ml", Name: "web-1-d"},
			metric:    source.RequestsPerSecond,
			wantErr:   apierrors.IsNotFound,
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{{Namespace: "ml", Name: "web-1-d", Node: "node-a"}}, Selector: ""}},
		},
		{name: "pending pod", gr: pods, object: types.NamespacedName{Namespace: "ml", Name: "web-1-c"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{name: "pod being deleted", gr: pods, object: types.NamespacedName{Namespace: "ml", Name: "web-1-e"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{name: "unknown pod", gr: pods, object: types.NamespacedName{Namespace: "ml", Name: "nope"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{name: "pod of another namespace", gr: pods, object: types.NamespacedName{Namespace: "ml", Name: "x"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{name: "unknown metric", gr: pods, object: types.NamespacedName{Namespace: "ml", Name: "web-1-a"}, metric: "cpu_usage", wantErr: apierrors.IsNotFound},
		{name: "unknown resource", gr: schema.GroupResource{Resource: "services"}, object: types.NamespacedName{Namespace: "ml", Name: "web"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{
			name:   "node",
			gr:     nodes,
			object: types.NamespacedName{Name: "node-a"},
			metric: source.GPUMemoryUsedBytes,
			want: &custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Node", APIVersion: "v1", Name: "node-a"},
				Metric:          custom_metrics.MetricIdentifier{Name: source.GPUMemoryUsedBytes},
				Timestamp:       metav1.NewTime(t0),
				Value:           resource.MustParse("3.2G"),
			},
			wantCalls: []call{{Metric: source.GPUMemoryUsedBytes, Nodes: []string{"node-a"}, Selector: ""}},
		},
		{name: "unknown node", gr: nodes, object: types.NamespacedName{Name: "node-z"}, metric: source.GPUUtilization, wantErr: apierrors.IsNotFound},
		{name: "node without a value", gr: nodes, object: types.NamespacedName{Name: "node-c"}, metric: source.GPUUtilization, wantErr: apierrors.IsNotFound,
			wantCalls: []call{{Metric: source.GPUUtilization, Nodes: []string{"node-c"}, Selector: ""}}},
		{name: "pod-only metric of a node", gr: nodes, object: types.NamespacedName{Name: "node-a"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{
			name:   "deployments.apps: sum over running pods",
			gr:     deployments,
			object: types.NamespacedName{Namespace: "ml", Name: "web"},
			metric: source.RequestsPerSecond,
			want:   new(workloadValue("Deployment", "web", source.RequestsPerSecond, "15.5", t0, int64p(2))),
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{
				web1a, {Namespace: "ml", Name: "web-1-b", Node: "node-b"}, {Namespace: "ml", Name: "web-1-d", Node: "node-a"},
			}, Selector: ""}},
		},
		{
			name:   "deployments without a group",
			gr:     schema.GroupResource{Resource: "deployments"},
			object: types.NamespacedName{Namespace: "ml", Name: "web"},
			metric: source.InferenceQueueDepth,
			want:   new(workloadValue("Deployment", "web", source.InferenceQueueDepth, "7", t0, nil)),
			wantCalls: []call{{Metric: source.InferenceQueueDepth, Pods: []source.Pod{
				web1a, {Namespace: "ml", Name: "web-1-b", Node: "node-b"}, {Namespace: "ml", Name: "web-1-d", Node: "node-a"},
			}, Selector: ""}},
		},
		{
			name:   "statefulset: sum over its pods",
			gr:     statefulSets,
			object: types.NamespacedName{Namespace: "ml", Name: "db"},
			metric: source.RequestsPerSecond,
			want:   new(workloadValue("StatefulSet", "db", source.RequestsPerSecond, "3", t0.Add(-time.Second), int64p(2))),
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{
				{Namespace: "ml", Name: "db-0", Node: "node-a"}, {Namespace: "ml", Name: "db-1", Node: "node-b"}, {Namespace: "ml", Name: "db-2", Node: "node-b"},
			}, Selector: ""}},
		},
		{name: "deployment with no values", gr: deployments, object: types.NamespacedName{Namespace: "ml", Name: "idle"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound,
			wantCalls: []call{{Metric: source.RequestsPerSecond, Selector: ""}}},
		{name: "unknown deployment", gr: deployments, object: types.NamespacedName{Namespace: "ml", Name: "nope"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
		{name: "workloads serve no GPU metrics", gr: deployments, object: types.NamespacedName{Namespace: "ml", Name: "web"}, metric: source.GPUUtilization, wantErr: apierrors.IsNotFound},
		{name: "deployments of the core group", gr: schema.GroupResource{Group: "core", Resource: "deployments"}, object: types.NamespacedName{Namespace: "ml", Name: "web"}, metric: source.RequestsPerSecond, wantErr: apierrors.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src.takeCalls()
			info := cmprovider.CustomMetricInfo{GroupResource: tc.gr, Namespaced: tc.object.Namespace != "", Metric: tc.metric}
			got, err := p.GetMetricByName(context.Background(), tc.object, info, parseSel(t, tc.sel))
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("GetMetricByName error = %v (value %v), want a matching error", err, got)
				}
			} else if err != nil {
				t.Fatalf("GetMetricByName: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, quantityEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("GetMetricByName (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCalls, src.takeCalls(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("source calls (-want +got):\n%s", diff)
			}
		})
	}
}

func workloadValue(kind, name, metric, value string, ts time.Time, window *int64) custom_metrics.MetricValue {
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: kind, APIVersion: "apps/v1", Namespace: "ml", Name: name},
		Metric:          custom_metrics.MetricIdentifier{Name: metric},
		Timestamp:       metav1.NewTime(ts),
		WindowSeconds:   window,
		Value:           resource.MustParse(value),
	}
}

func TestGetMetricBySelector(t *testing.T) {
	p, src := newTestProvider(t)
	inAB := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "model", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}
	withSel := func(v custom_metrics.MetricValue, s *metav1.LabelSelector) custom_metrics.MetricValue {
		v.Metric.Selector = s
		return v
	}
	node := func(name, value string) custom_metrics.MetricValue {
		return custom_metrics.MetricValue{
			DescribedObject: custom_metrics.ObjectReference{Kind: "Node", APIVersion: "v1", Name: name},
			Metric:          custom_metrics.MetricIdentifier{Name: source.GPUUtilization},
			Timestamp:       metav1.NewTime(t0),
			Value:           resource.MustParse(value),
		}
	}
	tests := []struct {
		name      string
		gr        schema.GroupResource
		namespace string
		selector  string
		metric    string
		metricSel string
		want      []custom_metrics.MetricValue
		wantCalls []call
		wantErr   func(error) bool
	}{
		{
			name:      "running pods with a value; selector echoed",
			gr:        pods,
			namespace: "ml",
			selector:  "app=web",
			metric:    source.RequestsPerSecond,
			metricSel: "model in (a,b)",
			want: []custom_metrics.MetricValue{
				withSel(podValue("web-1-a", source.RequestsPerSecond, "10", t0.Add(time.Second), int64p(2)), inAB),
				withSel(podValue("web-1-b", source.RequestsPerSecond, "5.5", t0, int64p(2)), inAB),
			},
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{
				{Namespace: "ml", Name: "web-1-a", Node: "node-a"}, {Namespace: "ml", Name: "web-1-b", Node: "node-b"}, {Namespace: "ml", Name: "web-1-d", Node: "node-a"},
			}, Selector: "model in (a,b)"}},
		},
		{
			name:      "namespace and label selector",
			gr:        pods,
			namespace: "ml",
			selector:  "app=db",
			metric:    source.RequestsPerSecond,
			want: []custom_metrics.MetricValue{
				podValue("db-0", source.RequestsPerSecond, "1", t0.Add(-time.Second), int64p(3)),
				podValue("db-1", source.RequestsPerSecond, "2", t0.Add(time.Second), int64p(2)),
			},
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{
				{Namespace: "ml", Name: "db-0", Node: "node-a"}, {Namespace: "ml", Name: "db-1", Node: "node-b"}, {Namespace: "ml", Name: "db-2", Node: "node-b"},
			}, Selector: ""}},
		},
		{
			name:      "no pod matches",
			gr:        pods,
			namespace: "ml",
			selector:  "app=none",
			metric:    source.RequestsPerSecond,
			wantCalls: []call{{Metric: source.RequestsPerSecond, Selector: ""}},
		},
		{
			name:      "nodes",
			gr:        nodes,
			selector:  "gpu=h100",
			metric:    source.GPUUtilization,
			want:      []custom_metrics.MetricValue{node("node-a", "250m"), node("node-b", "500m")},
			wantCalls: []call{{Metric: source.GPUUtilization, Nodes: []string{"node-a", "node-b"}, Selector: ""}},
		},
		{
			name:      "nodes without a value are left out",
			gr:        nodes,
			metric:    source.GPUUtilization,
			want:      []custom_metrics.MetricValue{node("node-a", "250m"), node("node-b", "500m")},
			wantCalls: []call{{Metric: source.GPUUtilization, Nodes: []string{"node-a", "node-b", "node-c"}, Selector: ""}},
		},
		{
			name:      "deployments: ones without values left out",
			gr:        deployments,
			namespace: "ml",
			metric:    source.RequestsPerSecond,
			want:      []custom_metrics.MetricValue{workloadValue("Deployment", "web", source.RequestsPerSecond, "15.5", t0, int64p(2))},
			wantCalls: []call{
				{Metric: source.RequestsPerSecond, Selector: ""}, // idle
				{Metric: source.RequestsPerSecond, Pods: []source.Pod{
					{Namespace: "ml", Name: "web-1-a", Node: "node-a"}, {Namespace: "ml", Name: "web-1-b", Node: "node-b"}, {Namespace: "ml", Name: "web-1-d", Node: "node-a"},
				}, Selector: ""},
			},
		},
		{
			name:      "statefulsets by selector",
			gr:        statefulSets,
			namespace: "ml",
			selector:  "app=db",
			metric:    source.RequestsPerSecond,
			metricSel: "model=bert",
			want: []custom_metrics.MetricValue{withSel(workloadValue("StatefulSet", "db", source.RequestsPerSecond, "3", t0.Add(-time.Second), int64p(2)),
				&metav1.LabelSelector{MatchLabels: map[string]string{"model": "bert"}})},
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: []source.Pod{
				{Namespace: "ml", Name: "db-0", Node: "node-a"}, {Namespace: "ml", Name: "db-1", Node: "node-b"}, {Namespace: "ml", Name: "db-2", Node: "node-b"},
			}, Selector: "model=bert"}},
		},
		{name: "unknown metric", gr: pods, namespace: "ml", metric: "nope", wantErr: apierrors.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src.takeCalls()
			info := cmprovider.CustomMetricInfo{GroupResource: tc.gr, Namespaced: tc.namespace != "", Metric: tc.metric}
			got, err := p.GetMetricBySelector(context.Background(), tc.namespace, parseSel(t, tc.selector), info, parseSel(t, tc.metricSel))
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("GetMetricBySelector error = %v, want a matching error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetMetricBySelector: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Items, quantityEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCalls, src.takeCalls(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("source calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceErrorsAreInternal(t *testing.T) {
	p, src := newTestProvider(t)
	src.err = errors.New("prometheus is down")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"pod by name", func() error {
			_, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ml", Name: "web-1-a"}, cmprovider.CustomMetricInfo{GroupResource: pods, Metric: source.RequestsPerSecond}, labels.Everything())
			return err
		}},
		{"node by name", func() error {
			_, err := p.GetMetricByName(ctx, types.NamespacedName{Name: "node-a"}, cmprovider.CustomMetricInfo{GroupResource: nodes, Metric: source.GPUUtilization}, labels.Everything())
			return err
		}},
		{"deployment by name", func() error {
			_, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ml", Name: "web"}, cmprovider.CustomMetricInfo{GroupResource: deployments, Metric: source.RequestsPerSecond}, labels.Everything())
			return err
		}},
		{"pods by selector", func() error {
			_, err := p.GetMetricBySelector(ctx, "ml", labels.Everything(), cmprovider.CustomMetricInfo{GroupResource: pods, Metric: source.RequestsPerSecond}, labels.Everything())
			return err
		}},
		{"external", func() error {
			_, err := p.GetExternalMetric(ctx, "ml", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: source.RequestsPerSecond})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !apierrors.IsInternalError(err) {
				t.Errorf("error = %v, want an internal error", err)
			}
		})
	}
}

func TestGetExternalMetric(t *testing.T) {
	p, src := newTestProvider(t)
	mlRunning := []source.Pod{
		{Namespace: "ml", Name: "db-0", Node: "node-a"}, {Namespace: "ml", Name: "db-1", Node: "node-b"}, {Namespace: "ml", Name: "db-2", Node: "node-b"},
		{Namespace: "ml", Name: "web-1-a", Node: "node-a"}, {Namespace: "ml", Name: "web-1-b", Node: "node-b"}, {Namespace: "ml", Name: "web-1-d", Node: "node-a"},
	}
	tests := []struct {
		name      string
		namespace string
		metric    string
		metricSel string
		want      *external_metrics.ExternalMetricValueList
		wantCalls []call
		wantErr   func(error) bool
	}{
		{
			name:      "rates are summed over the namespace's running pods",
			namespace: "ml",
			metric:    source.RequestsPerSecond,
			want: &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
				MetricName:    source.RequestsPerSecond,
				Timestamp:     metav1.NewTime(t0.Add(-time.Second)),
				WindowSeconds: int64p(2),
				Value:         resource.MustParse("18.5"),
			}}},
			wantCalls: []call{{Metric: source.RequestsPerSecond, Pods: mlRunning, Selector: ""}},
		},
		{
			name:      "utilization is averaged; equality labels reported",
			namespace: "ml",
			metric:    source.GPUUtilization,
			metricSel: "model=bert,zone in (a),gpu!=0,x in (a,b),y,!z",
			want: &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
				MetricName:   source.GPUUtilization,
				MetricLabels: map[string]string{"model": "bert", "zone": "a"},
				Timestamp:    metav1.NewTime(t0),
				Value:        resource.MustParse("625m"),
			}}},
			wantCalls: []call{{Metric: source.GPUUtilization, Pods: mlRunning, Selector: "gpu!=0,model=bert,x in (a,b),y,!z,zone in (a)"}},
		},
		{
			name:      "queue depths are summed",
			namespace: "ml",
			metric:    source.InferenceQueueDepth,
			metricSel: "model==bert",
			want: &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
				MetricName:   source.InferenceQueueDepth,
				MetricLabels: map[string]string{"model": "bert"},
				Timestamp:    metav1.NewTime(t0),
				Value:        resource.MustParse("7"),
			}}},
			wantCalls: []call{{Metric: source.InferenceQueueDepth, Pods: mlRunning, Selector: "model==bert"}},
		},
		{
			name:      "no pod has a value",
			namespace: "ml",
			metric:    source.GPUMemoryUsedBytes,
			wantErr:   apierrors.IsNotFound,
			wantCalls: []call{{Metric: source.GPUMemoryUsedBytes, Pods: mlRunning, Selector: ""}},
		},
		{
			name:      "namespace without pods",
			namespace: "empty",
			metric:    source.RequestsPerSecond,
			wantErr:   apierrors.IsNotFound,
			wantCalls: []call{{Metric: source.RequestsPerSecond, Selector: ""}},
		},
		{name: "unknown metric", namespace: "ml", metric: "nope", wantErr: apierrors.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src.takeCalls()
			got, err := p.GetExternalMetric(context.Background(), tc.namespace, parseSel(t, tc.metricSel), cmprovider.ExternalMetricInfo{Metric: tc.metric})
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("GetExternalMetric error = %v, want a matching error", err)
				}
			} else if err != nil {
				t.Fatalf("GetExternalMetric: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, quantityEqual); diff != "" {
				t.Errorf("GetExternalMetric (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCalls, src.takeCalls(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("source calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListAllMetrics(t *testing.T) {
	p, _ := newTestProvider(t)
	info := func(gr schema.GroupResource, namespaced bool, m string) cmprovider.CustomMetricInfo {
		return cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: namespaced, Metric: m}
	}
	want := []cmprovider.CustomMetricInfo{
		info(pods, true, source.GPUMemoryUsedBytes),
		info(pods, true, source.GPUUtilization),
		info(pods, true, source.InferenceInputDrift),
		info(pods, true, source.InferenceOutputDrift),
		info(pods, true, source.InferenceQueueDepth),
		info(pods, true, source.RequestsPerSecond),
		info(nodes, false, source.GPUMemoryUsedBytes),
		info(nodes, false, source.GPUUtilization),
		info(deployments, true, source.RequestsPerSecond),
		info(deployments, true, source.InferenceQueueDepth),
		info(statefulSets, true, source.RequestsPerSecond),
		info(statefulSets, true, source.InferenceQueueDepth),
	}
	if diff := cmp.Diff(want, p.ListAllMetrics()); diff != "" {
		t.Errorf("ListAllMetrics (-want +got):\n%s", diff)
	}
	wantExt := []cmprovider.ExternalMetricInfo{
		{Metric: source.GPUMemoryUsedBytes}, {Metric: source.GPUUtilization}, {Metric: source.InferenceInputDrift}, {Metric: source.InferenceOutputDrift},
		{Metric: source.InferenceQueueDepth}, {Metric: source.RequestsPerSecond},
	}
	if diff := cmp.Diff(wantExt, p.ListAllExternalMetrics()); diff != "" {
		t.Errorf("ListAllExternalMetrics (-want +got):\n%s", diff)
	}
}

func TestQuantity(t *testing.T) {
	tests := []struct {
		in        float64
		want      string
		wantMilli int64
	}{
		{in: 0, want: "0", wantMilli: 0},
		{in: 0.0005, want: "1m", wantMilli: 1},
		{in: 0.0004, want: "0", wantMilli: 0},
		{in: 0.001, want: "1m", wantMilli: 1},
		{in: 1.5, want: "1500m", wantMilli: 1500},
		{in: -2.25, want: "-2250m", wantMilli: -2250},
		{in: 123.4567, want: "123457m", wantMilli: 123457},
		{in: 3.2e9, want: "3200M", wantMilli: 3.2e12},
		{in: 1e15, want: "1P", wantMilli: 1e18},
		{in: 1e13 + 0.4, want: "10T", wantMilli: 1e16},
		{in: math.NaN(), want: "0", wantMilli: 0},
		{in: math.Inf(1), want: "0", wantMilli: 0},
		{in: math.Inf(-1), want: "0", wantMilli: 0},
	}
	for _, tc := range tests {
		q := quantity(tc.in)
		if got := q.String(); got != tc.want {
			t.Errorf("quantity(%v) = %s, want %s", tc.in, got, tc.want)
		}
		if got := q.MilliValue(); got != tc.wantMilli {
			t.Errorf("quantity(%v).MilliValue() = %d, want %d", tc.in, got, tc.wantMilli)
		}
	}
}

func TestWindowSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want *int64
	}{
		{in: 0, want: nil},
		{in: -time.Second, want: nil},
		{in: 100 * time.Millisecond, want: int64p(1)},
		{in: 1499 * time.Millisecond, want: int64p(1)},
		{in: 1500 * time.Millisecond, want: int64p(2)},
		{in: time.Minute, want: int64p(60)},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, windowSeconds(tc.in)); diff != "" {
			t.Errorf("windowSeconds(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}
