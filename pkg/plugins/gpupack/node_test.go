package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodeFitsGPU(t *testing.T) {
	tests := []struct {
		name string
		free []int64
		r    Request
		want bool
	}{
		{name: "CPU-only pod fits a node without GPUs", free: nil, r: cpuOnly(100), want: true},
		{name: "share fits exactly", free: []int64{0, 470}, r: share(470), want: true},
		{name: "share bigger than every GPU's room", free: []int64{469, 300}, r: share(470), want: false},
		{name: "shares do not add up across GPUs", free: []int64{500, 500}, r: share(600), want: false},
		{name: "whole GPUs need fully free GPUs", free: []int64{1000, 999, 1000}, r: wholeGPU(2), want: true},
		{name: "too few fully free GPUs", free: []int64{1000, 999, 1000}, r: wholeGPU(3), want: false},
		{name: "node without GPUs", free: nil, r: wholeGPU(1), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gpuNode(tt.free...).FitsGPU(tt.r); got != tt.want {
				t.Errorf("FitsGPU(%s) on %v = %t, want %t", tt.r, tt.free, got, tt.want)
			}
		})
	}
}

func TestNodeCanTake(t *testing.T) {
	free := []int64{1000, 400, 0, 1000}
	tests := []struct {
		name string
		r    Request
		gpus []int
		want bool
	}{
		{name: "share on a GPU with room", r: share(400), gpus: []int{1}, want: true},
		{name: "share on a GPU without room", r: share(401), gpus: []int{1}, want: false},
		{name: "whole GPUs on free GPUs", r: wholeGPU(2), gpus: []int{0, 3}, want: true},
		{name: "whole GPU on a partly used GPU", r: wholeGPU(2), gpus: []int{0, 1}, want: false},
		{name: "fewer GPUs than requested", r: wholeGPU(2), gpus: []int{0}, want: false},
		{name: "more GPUs than requested", r: share(100), gpus: []int{0, 3}, want: false},
		{name: "no GPUs for a GPU request", r: share(100), gpus: nil, want: false},
		{name: "GPU index past the end", r: wholeGPU(1), gpus: []int{4}, want: false},
		{name: "negative GPU index", r: wholeGPU(1), gpus: []int{-1}, want: false},
		{name: "CPU-only request and no GPUs", r: cpuOnly(100), gpus: nil, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gpuNode(free...).CanTake(tt.r, tt.gpus); got != tt.want {
				t.Errorf("CanTake(%s, %v) on %v = %t, want %t", tt.r, tt.gpus, free, got, tt.want)
			}
		})
	}
}

func TestNodeTakeRelease(t *testing.T) {
	n := gpuNode(1000, 600, 1000, 1000)
	n.CPUFree = 8000
	orig := n.Clone()

	n.Take(share(250), []int{1})
	n.Take(Request{GPUs: 2, CPU: 3000}, []int{0, 3})
	want := &Node{Name: "n", Model: "V100M16", ModelKnown: true, Free: []int64{0, 350, 1000, 0}, CPUFree: 4000}
	if diff := cmp.Diff(want, n); diff != "" {
		t.Fatalf("after Take (-want +got):\n%s", diff)
	}
	if got, want := n.Idle(), int64(1350); got != want {
		t.Errorf("Idle() = %d, want %d", got, want)
	}
	if got, want := n.Capacity(), int64(4000); got != want {
		t.Errorf("Capacity() = %d, want %d", got, want)
	}
	if diff := cmp.Diff([]int64{1000, 600, 1000, 1000}, orig.Free); diff != "" {
		t.Errorf("Take changed a clone taken before (-want +got):\n%s", diff)
	}

	n.Release(Request{GPUs: 2, CPU: 3000}, []int{0, 3})
	n.Release(share(250), []int{1})
	if diff := cmp.Diff(orig, n); diff != "" {
		t.Errorf("Release did not undo Take (-want +got):\n%s", diff)
	}
}

func TestNodeFitGPU(t *testing.T) {
	tests := []struct {
		name     string
		free     []int64
		per      int64
		bestFit  int
		worstFit int
	}{
		{name: "fullest and emptiest that fit", free: []int64{1000, 300, 500, 200}, per: 250, bestFit: 1, worstFit: 0},
		{name: "exact fit is the best fit", free: []int64{1000, 300, 250}, per: 250, bestFit: 2, worstFit: 0},
		{name: "ties go to the lowest index", free: []int64{100, 500, 1000, 500, 1000}, per: 400, bestFit: 1, worstFit: 2},
		{name: "all equal", free: []int64{700, 700, 700}, per: 700, bestFit: 0, worstFit: 0},
		{name: "nothing fits", free: []int64{100, 399}, per: 400, bestFit: -1, worstFit: -1},
		{name: "no GPUs", free: nil, per: 1, bestFit: -1, worstFit: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := gpuNode(tt.free...)
			if got := n.BestFitGPU(tt.per); got != tt.bestFit {
				t.Errorf("BestFitGPU(%d) on %v = %d, want %d", tt.per, tt.free, got, tt.bestFit)
			}
			if got := n.WorstFitGPU(tt.per); got != tt.worstFit {
				t.Errorf("WorstFitGPU(%d) on %v = %d, want %d", tt.per, tt.free, got, tt.worstFit)
			}
		})
	}
}

func TestNodeClone(t *testing.T) {
	n := gpuNode(1000, 500)
	c := n.Clone()
	c.Free[0] = 0
	c.CPUFree = 0
	if n.Free[0] != 1000 || n.CPUFree != 64000 {
		t.Errorf("changing a clone changed the node: %+v", n)
	}
}

func TestCanTakeRejectsRepeatedGPU(t *testing.T) {
	if gpuNode(1000, 0).CanTake(wholeGPU(2), []int{0, 0}) {
		t.Error("CanTake accepted GPU 0 twice for a 2-GPU request")
	}
	if !gpuNode(1000, 1000).CanTake(wholeGPU(2), []int{1, 0}) {
		t.Error("CanTake refused two free GPUs")
	}
}
