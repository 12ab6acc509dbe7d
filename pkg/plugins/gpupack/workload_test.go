package gpupack

import (
	"math"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
)

// observe adds n pods of shape r.
func observe(w *Workload, r Request, n int) {
	for range n {
		w.Observe(r)
	}
}

// equateWeights compares weights to 1e-9.
var equateWeights = cmpopts.EquateApprox(0, 1e-9)

func TestWorkloadTypicalEmpty(t *testing.T) {
	if got := NewWorkload(10, 100).Typical(); len(got) != 0 {
		t.Errorf("Typical() of an empty workload = %v, want none", got)
	}
}

func TestWorkloadTypicalWeights(t *testing.T) {
	w := NewWorkload(100, 100)
	observe(w, share(500), 6)
	observe(w, wholeGPU(1), 3)
	observe(w, cpuOnly(2000), 1)
	want := []TypicalPod{
		{Request: share(500), Weight: 0.6},
		{Request: wholeGPU(1), Weight: 0.3},
		{Request: cpuOnly(2000), Weight: 0.1},
	}
	got := w.Typical()
	if diff := cmp.Diff(want, got, equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() mismatch (-want +got):\n%s", diff)
	}
}

func TestWorkloadCoverage(t *testing.T) {
	// Ten shapes seen 10, 9, ..., 1 times: 55 pods.
	shapes := make([]Request, 10)
	for i := range shapes {
		shapes[i] = share(int64(100 + 10*i))
	}
	tests := []struct {
		coverage int // percent
		kept     int // shapes kept, most frequent first
	}{
		{coverage: 50, kept: 4}, // 10+9+8 = 27 < 27.5 <= 34
		{coverage: 18, kept: 1}, // 10 >= 9.9
		{coverage: 1, kept: 1},  // one shape always
		{coverage: 100, kept: 10},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.coverage), func(t *testing.T) {
			w := NewWorkload(100, tt.coverage)
			for i, r := range shapes {
				observe(w, r, 10-i)
			}
			got := w.Typical()
			cum := 0
			for i := range tt.kept {
				cum += 10 - i
			}
			want := make([]TypicalPod, tt.kept)
			for i := range want {
				want[i] = TypicalPod{Request: shapes[i], Weight: float64(10-i) / float64(cum)}
			}
			if diff := cmp.Diff(want, got, equateWeights, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Typical() mismatch (-want +got):\n%s", diff)
			}
			var sum float64
			for _, p := range got {
				sum += p.Weight
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("weights sum to %v, want 1", sum)
			}
		})
	}
}

func TestWorkloadWindowForgetsOldest(t *testing.T) {
	a, b, c := share(100), share(200), share(300)
	w := NewWorkload(4, 100)
	observe(w, a, 3)
	observe(w, b, 1)
	// The window is full: each new pod pushes out the oldest.
	observe(w, c, 2)
	// a and b tie: the larger share comes first.
	want := []TypicalPod{{Request: c, Weight: 0.5}, {Request: b, Weight: 0.25}, {Request: a, Weight: 0.25}}
	if diff := cmp.Diff(want, w.Typical(), equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() after 6 pods in a window of 4 mismatch (-want +got):\n%s", diff)
	}
	observe(w, c, 2)
	want = []TypicalPod{{Request: c, Weight: 1}}
	if diff := cmp.Diff(want, w.Typical(), equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() after 8 pods in a window of 4 mismatch (-want +got):\n%s", diff)
	}
}

func TestWorkloadObservePodDedupesByUID(t *testing.T) {
	w := NewWorkload(3, 100)
	for range 5 { // a pending pod retried
		w.ObservePod("retried", wholeGPU(2))
	}
	w.ObservePod("other", share(500))
	want := []TypicalPod{{Request: wholeGPU(2), Weight: 0.5}, {Request: share(500), Weight: 0.5}}
	if diff := cmp.Diff(want, w.Typical(), equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() mismatch (-want +got):\n%s", diff)
	}

	// Once the window has forgotten a UID, the pod counts again.
	w.ObservePod("c", share(500))
	w.ObservePod("d", share(500)) // window of UIDs: other, c, d
	w.ObservePod("retried", wholeGPU(2))
	want = []TypicalPod{{Request: share(500), Weight: 2.0 / 3}, {Request: wholeGPU(2), Weight: 1.0 / 3}}
	if diff := cmp.Diff(want, w.Typical(), equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() after the window moved on mismatch (-want +got):\n%s", diff)
	}
}

func TestWorkloadTieOrderIsDeterministic(t *testing.T) {
	// Equal counts: larger CPU first, then larger share of each GPU (a
	// whole GPU is 1000), then more GPUs, then models in reverse lexical
	// order (the FGD paper's simulator orders them so).
	want := []Request{
		{CPU: 4000},
		{CPU: 1000, GPUs: 2},
		{CPU: 1000, GPUs: 1, Models: []string{"V100M16", "V100M32"}},
		{CPU: 1000, GPUs: 1, Models: []string{"T4"}},
		{CPU: 1000, GPUs: 1},
		{CPU: 1000, Milli: 700},
		{CPU: 1000, Milli: 300},
	}
	for i := range 20 { // map iteration order differs from run to run
		w := NewWorkload(100, 100)
		for j := range want {
			r := want[(j+i)%len(want)]
			w.ObservePod(types.UID(strconv.Itoa(j)), r)
		}
		var got []Request
		for _, p := range w.Typical() {
			got = append(got, p.Request)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("run %d: Typical() order mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func TestWorkloadTypicalFollowsNewPods(t *testing.T) {
	w := NewWorkload(10, 100)
	observe(w, share(500), 1)
	first := w.Typical()
	if diff := cmp.Diff(first, w.Typical(), equateWeights); diff != "" {
		t.Errorf("Typical() changed without new pods (-first +second):\n%s", diff)
	}
	observe(w, wholeGPU(1), 3)
	want := []TypicalPod{{Request: wholeGPU(1), Weight: 0.75}, {Request: share(500), Weight: 0.25}}
	if diff := cmp.Diff(want, w.Typical(), equateWeights, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Typical() after new pods mismatch (-want +got):\n%s", diff)
	}
}

// A coverage met exactly keeps no further shape: 55 % of 100 pods is the
// 55 pods of the most frequent shape (float arithmetic would say 55.000...1).
func TestWorkloadCoverageExact(t *testing.T) {
	w := NewWorkload(100, 55)
	observe(w, share(100), 55)
	observe(w, share(200), 30)
	observe(w, share(300), 15)
	got := w.Typical()
	if len(got) != 1 || got[0].Milli != 100 || got[0].Weight != 1 {
		t.Errorf("Typical() = %+v, want only the 100-milli shape with weight 1", got)
	}
}
