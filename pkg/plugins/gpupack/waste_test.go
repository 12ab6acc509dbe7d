package gpupack

import (
	"math"
	"testing"
)

func TestWasteModelLeftover(t *testing.T) {
	tests := []struct {
		name        string
		typical     []TypicalPod
		leftover    map[int64]float64 // free milli-GPU -> expected leftover
		cpuPerMilli float64
	}{
		{
			// 500-milli pods fill a GPU in halves.
			name:        "halves",
			typical:     halfGPUs.Typical,
			leftover:    map[int64]float64{0: 0, 400: 400, 500: 0, 600: 100, 999: 499, 1000: 0},
			cpuPerMilli: 2, // 1000 millicores per 500 milli-GPU
		},
		{
			// After a 600 a 400 or a 600 may come: 400 -> 0 half the
			// time, else 400 stays (the 600 does not fit).
			name:        "two shares",
			typical:     []TypicalPod{{Request: share(400), Weight: 0.5}, {Request: share(600), Weight: 0.5}},
			leftover:    map[int64]float64{1000: 0.5*(0.5*200+0.5*0) + 0.5*0, 400: 0, 300: 300},
			cpuPerMilli: 2,
		},
		{
			// The 160-milli shape is 1.5 % of pods, half the rare-fill
			// share: a 190-milli piece keeps 190 half the time, 30 else.
			name:        "rare filler",
			typical:     []TypicalPod{{Request: share(810), Weight: 0.985}, {Request: share(160), Weight: 0.015}},
			leftover:    map[int64]float64{190: 0.5*190 + 0.5*30, 150: 150},
			cpuPerMilli: 1000 / (0.985*810 + 0.015*160),
		},
		{
			// Shapes differing only in CPU fill a GPU alike: pooled, they
			// are 3 % of pods and fill for sure.
			name:        "pooled by share",
			typical:     []TypicalPod{{Request: Request{Milli: 500, CPU: 1000}, Weight: 0.015}, {Request: Request{Milli: 500, CPU: 2000}, Weight: 0.015}, {Request: cpuOnly(4000), Weight: 0.97}},
			leftover:    map[int64]float64{500: 0, 1000: 0, 700: 200},
			cpuPerMilli: 3, // (1000 + 2000) / 2 / 500
		},
		{
			// Pods of several whole GPUs fill whole GPUs.
			name:        "whole GPUs",
			typical:     []TypicalPod{{Request: wholeGPU(4), Weight: 1}},
			leftover:    map[int64]float64{1000: 0, 999: 999},
			cpuPerMilli: 0.25,
		},
		{
			name:     "no GPU pods",
			typical:  anything.Typical,
			leftover: map[int64]float64{1000: 1000, 10: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWasteModel(tt.typical)
			for f, want := range tt.leftover {
				if got := w.left(f); math.Abs(got-want) > 1e-9 {
					t.Errorf("leftover of %d free = %v, want %v", f, got, want)
				}
			}
			if math.Abs(w.cpuPerMilli-tt.cpuPerMilli) > 1e-9 {
				t.Errorf("CPU per milli-GPU = %v, want %v", w.cpuPerMilli, tt.cpuPerMilli)
			}
		})
	}
}

func TestWasteModelWaste(t *testing.T) {
	w := newWasteModel(cpuBound.Typical) // 2 millicores per milli-GPU
	for _, tt := range []struct {
		leftover      float64
		idle, cpuFree int64
		want          float64
	}{
		{0, 1000, 2000, 0},     // CPU feeds all of it
		{0, 1000, 1500, 250},   // 1500 millicores feed 750
		{100, 1000, 1500, 250}, // the leftover needs no CPU: 900 to feed, 750 fed
		{0, 1000, 0, 1000},
		{0, 0, 0, 0},
		{0, 1000, -500, 1250}, // over-committed CPU
	} {
		if got := w.waste(tt.leftover, tt.idle, tt.cpuFree); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("waste(%v, %d idle, %d CPU) = %v, want %v", tt.leftover, tt.idle, tt.cpuFree, got, tt.want)
		}
	}
	if got := w.left(-5); got != 0 {
		t.Errorf("leftover of a negative free share = %v, want 0", got)
	}
	if got := w.left(1500); got != w.left(1000) {
		t.Errorf("leftover beyond a GPU = %v, want that of a whole GPU %v", got, w.left(1000))
	}
}

func TestWasteCacheFollowsTypical(t *testing.T) {
	var c wasteCache
	a := []TypicalPod{{Request: share(500), Weight: 1}}
	m := c.get(a)
	if c.get(a) != m {
		t.Error("same typical pods: the model was rebuilt")
	}
	b := []TypicalPod{{Request: share(300), Weight: 1}}
	if m2 := c.get(b); m2 == m || m2.left(400) != 100 {
		t.Errorf("new typical pods: got the old model or a wrong one (leftover of 400 = %v, want 100)", m2.left(400))
	}
}
