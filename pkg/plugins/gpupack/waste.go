package gpupack

import (
	"hash/fnv"
	"slices"
	"sync"
)

// rareFillShare is the share of pods below which a free piece of a GPU is
// expected to stay partly unfilled: a piece that only shapes making up a
// fraction s < rareFillShare of the workload fit is filled with probability
// s/rareFillShare. A 190-milli sliver that only a rare 160-milli pod fits is
// as good as stranded; a 530-milli piece that every other pod fits is not.
const rareFillShare = 0.03

// wasteModel is GPUFleet's estimate of how much of a node's idle GPU will
// never be allocated if the node keeps receiving the workload's typical
// pods: the expected leftover of each GPU once random typical pods that fit
// have landed on it, plus the GPU share the node's free CPU cannot feed.
type wasteModel struct {
	// leftover[f] is the expected milli-GPU left on a GPU with f free.
	leftover [MilliPerGPU + 1]float64
	// cpuPerMilli is the typical GPU pod's CPU per milli-GPU (0: the
	// workload has no GPU pods with CPU requests).
	cpuPerMilli float64
}

// newWasteModel derives the model from the typical pods. Shapes are pooled
// by their share of each GPU (pods differing only in CPU or model fill a GPU
// alike); CPU-only shapes fill no GPU but count in the workload's total.
func newWasteModel(typical []TypicalPod) *wasteModel {
	w := &wasteModel{}
	var shares []int64    // per-GPU shares of the GPU shapes
	var weights []float64 // their popularity
	var cpu, milli float64
	for _, t := range typical {
		if t.Count() == 0 || t.Weight <= 0 {
			continue
		}
		per := min(max(t.PerGPU(), 1), MilliPerGPU)
		if i := slices.Index(shares, per); i >= 0 {
			weights[i] += t.Weight
		} else {
			shares, weights = append(shares, per), append(weights, t.Weight)
		}
		cpu += t.Weight * float64(t.CPU)
		milli += t.Weight * float64(t.TotalMilli())
	}
	if milli > 0 {
		w.cpuPerMilli = cpu / milli
	}
	for f := range w.leftover {
		var fit, next float64
		for i, per := range shares {
			if per <= int64(f) {
				fit += weights[i]
				next += weights[i] * w.leftover[int64(f)-per]
			}
		}
		w.leftover[f] = float64(f)
		if fit > 0 {
			p := min(1, fit/rareFillShare)
			w.leftover[f] = (1-p)*float64(f) + p*next/fit
		}
	}
	return w
}

// left is the expected leftover of a GPU with f milli-GPU free.
func (w *wasteModel) left(f int64) float64 { return w.leftover[min(max(f, 0), MilliPerGPU)] }

// waste is the expected never-allocated milli-GPU of a node whose GPUs'
// expected leftovers sum to leftover, with idle milli-GPU idle and cpuFree
// millicores free: the leftover, plus the idle share beyond it that the free
// CPU cannot feed typical pods.
func (w *wasteModel) waste(leftover float64, idle, cpuFree int64) float64 {
	if w.cpuPerMilli <= 0 {
		return leftover
	}
	return leftover + max(0, float64(idle)-leftover-float64(cpuFree)/w.cpuPerMilli)
}

// wasteCache keeps the model of the latest typical pods: Workload.Typical
// returns the same slice until the shapes change.
type wasteCache struct {
	mu      sync.Mutex
	typical []TypicalPod
	model   *wasteModel
}

func (c *wasteCache) get(typical []TypicalPod) *wasteModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.model == nil || !sameSlice(c.typical, typical) {
		c.typical, c.model = typical, newWasteModel(typical)
	}
	return c.model
}

func sameSlice(a, b []TypicalPod) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// nodeOrder is a node's fixed place in GPUFleet's tie-break order, in
// 0..packScale-2: a hash of its name, so every scheduler replica and every
// cycle breaks ties the same way.
func nodeOrder(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int64(h.Sum32() % (packScale - 1))
}
