package gpupack

import (
	"math/rand/v2"
)

// The FGD paper's baseline policies, for comparing placements in the trace
// simulator (cmd/gpusim). Their scores follow the paper's simulator:
// integer 0..100, no normalization.
const (
	StrategyRandom        = "Random"
	StrategyDotProduct    = "DotProduct"
	StrategyGPUPacking    = "GPUPacking"
	StrategyGPUClustering = "GPUClustering"
)

// randomPolicy picks a uniformly random feasible node (raw scores are random,
// normalized by rank, so the best is uniform) and a random GPU that fits.
type randomPolicy struct{}

func (randomPolicy) Name() string { return StrategyRandom }

func (randomPolicy) Score(_ *Cluster, n *Node, r Request) (int64, []int) {
	score := rand.Int64()
	if r.GPUs > 0 || r.Count() == 0 {
		return score, packGPUs(n, r)
	}
	var fits []int
	for g, f := range n.Free {
		if f >= r.Milli {
			fits = append(fits, g)
		}
	}
	if len(fits) == 0 {
		return score, nil
	}
	return score, []int{fits[rand.IntN(len(fits))]}
}

func (randomPolicy) Normalize(scores []int64) { rank(scores) }

// dotProduct prefers the node whose free (CPU, GPU) vector, each relative to
// the largest node, has the smallest dot product with the pod's request.
type dotProduct struct{}

func (dotProduct) Name() string { return StrategyDotProduct }

func (dotProduct) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	if n.CPUFree < r.CPU {
		return 0, packGPUs(n, r)
	}
	cpu, gpu := float64(max(c.MaxCPU, 1)), float64(max(c.MaxGPUMilli, 1))
	dot := float64(n.CPUFree)/cpu*float64(r.CPU)/cpu + float64(n.Idle())/gpu*float64(r.TotalMilli())/gpu
	return int64(MaxScore * (1 - dot/2)), packGPUs(n, r)
}

func (dotProduct) Normalize([]int64) {}

// gpuPacking prefers, in this order: GPUs already partly used, then nodes
// already partly used, then idle nodes (fewer free GPUs first).
type gpuPacking struct{}

func (gpuPacking) Name() string { return StrategyGPUPacking }

func (gpuPacking) Score(_ *Cluster, n *Node, r Request) (int64, []int) {
	gpus := packGPUs(n, r)
	if r.Count() == 0 {
		return 0, gpus
	}
	free := n.usable(MilliPerGPU)
	if free == len(n.Free) {
		return int64(max(33-free, free)), gpus
	}
	// The GPUs the pod would take, fullest first.
	taken := fullestFitting(n, r)
	untouched := 0
	var leftPct int64
	for _, g := range taken {
		if n.Free[g] >= MilliPerGPU {
			untouched++
		}
		leftPct += n.Free[g] * 100 / MilliPerGPU
	}
	if untouched > 0 {
		return int64(max(50-untouched, 33)), gpus
	}
	return max(100-leftPct/10, 50), gpus
}

func (gpuPacking) Normalize([]int64) {}

// fullestFitting returns the r.Count() GPUs with the least free share that
// still hold r's per-GPU share, fullest first (stable by index).
func fullestFitting(n *Node, r Request) []int {
	per := r.PerGPU()
	var out []int
	used := make([]bool, len(n.Free))
	for len(out) < r.Count() {
		best := -1
		for g, f := range n.Free {
			if !used[g] && f >= per && (best < 0 || f < n.Free[best]) {
				best = g
			}
		}
		if best < 0 {
			break
		}
		used[best] = true
		out = append(out, best)
	}
	return out
}

// gpuClustering prefers nodes running only pods of the same kind (shares,
// or k-GPU pods), then mixed nodes with that kind, then empty nodes, with a
// bonus for fuller nodes.
type gpuClustering struct{}

func (gpuClustering) Name() string { return StrategyGPUClustering }

func (gpuClustering) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	gpus := packGPUs(n, r)
	if r.Count() == 0 {
		return 0, gpus
	}
	maxGPU := max(c.MaxGPUMilli, 1)
	base := 25 * (maxGPU - n.Idle()) / maxGPU
	_, same := n.Kinds[kind(r)]
	switch {
	case same && len(n.Kinds) == 1:
		return base + 75, gpus
	case same:
		return base + 50, gpus
	case len(n.Kinds) == 0:
		return base + 25, gpus
	}
	return base, gpus
}

func (gpuClustering) Normalize([]int64) {}
