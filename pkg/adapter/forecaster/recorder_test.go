package forecaster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// clockSource serves each pod half of a daily load: 100/s, 400/s from
// 12:00 to 13:00 (UTC), at the time of a clock.
type clockSource struct{ now *time.Time }

func (c clockSource) PodValues(_ context.Context, _ source.Metric, pods []source.Pod, _ labels.Selector) ([]source.Sample, []bool, error) {
	rate := 100.0
	if c.now.UTC().Hour() == 12 {
		rate = 400
	}
	vals, oks := make([]source.Sample, len(pods)), make([]bool, len(pods))
	for i := range pods {
		vals[i], oks[i] = source.Sample{Value: rate / 2, Timestamp: *c.now}, true
	}
	return vals, oks, nil
}

func (c clockSource) NodeValues(context.Context, source.Metric, []string, labels.Selector) ([]source.Sample, []bool, error) {
	return nil, nil, nil
}

func newRecorder(t *testing.T, now *time.Time, state string) (*Recorder, *cluster.Cache) {
	t.Helper()
	ctrl := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-x" + name), Controller: new(true)}}
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name, OwnerReferences: ctrl("ReplicaSet", "bert-1")},
			Spec:   corev1.PodSpec{NodeName: "node-a"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}}
	}
	client := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "bert", UID: "uid-xbert",
			Annotations: map[string]string{StartupAnnotation: "90", "other.io/x": "dropped"}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "bert-1", UID: "uid-xbert-1", OwnerReferences: ctrl("Deployment", "bert")}},
		pod("bert-1-a"), pod("bert-1-b"))
	c, err := cluster.New(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := forecast.NewStore(forecast.DefaultConfig(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return &Recorder{Cache: c, Source: clockSource{now}, Store: st, Period: 10 * time.Second, DefaultHorizon: 2 * time.Minute,
		StateFile: state, SaveEvery: time.Minute, Now: func() time.Time { return *now }}, c
}

func TestRecorderForecastsTheDailyStepAndSurvivesARestart(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := start
	state := filepath.Join(t.TempDir(), "forecast.gob")
	r, c := newRecorder(t, &now, state)
	for now = start; now.Before(start.Add(59*time.Hour + 59*time.Minute)); now = now.Add(10 * time.Second) {
		if err := r.Record(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// 11:59 on the third day; the Deployment's start-up is 90 s.
	w, found, err := c.Workload("Deployment", "ml", "bert")
	if err != nil || !found {
		t.Fatalf("Workload: %v, %v", found, err)
	}
	if got := w.Annotations; len(got) != 1 || got[StartupAnnotation] != "90" {
		t.Errorf("workload annotations %v, want only %s", got, StartupAnnotation)
	}
	for _, tc := range []struct {
		name     string
		w        cluster.Workload
		reactive float64
		want     float64
	}{
		{"the step a minute ahead is foreseen", w, 100, 400},
		{"never below the reactive rate", w, 1000, 1000},
		{"a 30 s start-up does not reach the step", cluster.Workload{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Annotations: map[string]string{StartupAnnotation: "30"}}, 100, 100},
		{"no history: the reactive rate", cluster.Workload{Kind: "Deployment", Namespace: "ml", Name: "new"}, 55, 55},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Forecast(tc.w, tc.reactive); got != tc.want {
				t.Errorf("Forecast = %v, want %v", got, tc.want)
			}
		})
	}
	// A restart: the state file is written on the way out and read at start.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	restarted, _ := newRecorder(t, &now, state)
	if err := restarted.Load(); err != nil {
		t.Fatal(err)
	}
	if got := restarted.Forecast(w, 100); got != 400 {
		t.Errorf("after a restart: %v, want 400", got)
	}
}

func TestHorizon(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{{"90", 90 * time.Second}, {"2.5", 2500 * time.Millisecond}, {"-1", time.Minute}, {"soon", time.Minute}, {"", time.Minute}} {
		a := map[string]string{StartupAnnotation: tc.v}
		if tc.v == "" {
			a = nil
		}
		if got := Horizon(a, time.Minute); got != tc.want {
			t.Errorf("Horizon(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
