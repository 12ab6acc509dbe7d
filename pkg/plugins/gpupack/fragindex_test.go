package gpupack

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The incremental fragmentation the strategies use equals the definition
// (Fragmentation of the node after the placement) on random nodes, typical
// pods and placements.
func TestFragIndexMatchesFragmentation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	models := []string{"V100M16", "T4", ""}
	randomRequest := func() Request {
		r := Request{CPU: int64(rng.IntN(8)) * 1000}
		switch rng.IntN(4) {
		case 0:
		case 1:
			r.GPUs = 1 + rng.IntN(4)
		default:
			r.Milli = int64(50 * (1 + rng.IntN(20)))
		}
		if m := models[rng.IntN(len(models))]; m != "" && r.WantsGPU() {
			r.Models = []string{m}
		}
		return r
	}
	for iter := range 2000 {
		n := &Node{Name: "n", Model: "V100M16", ModelKnown: true, CPUFree: int64(rng.IntN(16)) * 1000}
		n.Free = make([]int64, 1+rng.IntN(8))
		for i := range n.Free {
			n.Free[i] = int64(rng.IntN(11)) * 100
		}
		typical := make([]TypicalPod, 1+rng.IntN(6))
		for i := range typical {
			typical[i] = TypicalPod{Request: randomRequest(), Weight: 1 / float64(len(typical))}
		}
		fi := newFragIndex(n, typical)
		if got, want := fi.value(), Fragmentation(n, typical); math.Abs(got-want) > 1e-9 {
			t.Fatalf("iteration %d: index value %v, Fragmentation %v (node %+v)", iter, got, want, n)
		}
		r := randomRequest()
		if !r.WantsGPU() || !n.FitsGPU(r) {
			continue
		}
		gpus := packGPUs(n, r)
		after := n.Clone()
		after.Take(r, gpus)
		if got, want := fi.after(n, r, gpus), Fragmentation(after, typical); math.Abs(got-want) > 1e-9 {
			t.Fatalf("iteration %d: after placing %s on GPUs %v of %v: index %v, Fragmentation %v", iter, r, gpus, n.Free, got, want)
		}
	}
}
