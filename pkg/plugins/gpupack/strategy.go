package gpupack

import (
	"fmt"
	"math"
	"slices"
)

// Strategy names, as the plugin args spell them.
const (
	StrategyBestFit  = "BestFit"
	StrategyFGD      = "FGD"
	StrategySpread   = "Spread"
	StrategyGPUFleet = "GPUFleet"
)

// Strategies lists the strategy names the args accept: gpufleet's own,
// FGD, the usual bin-packing and spreading, and the FGD paper's other
// baselines (for the trace simulator's comparisons).
var Strategies = []string{StrategyGPUFleet, StrategyFGD, StrategyBestFit, StrategySpread,
	StrategyRandom, StrategyDotProduct, StrategyGPUPacking, StrategyGPUClustering}

// MaxScore is the framework's highest node score.
const MaxScore = 100

// Cluster is what a strategy knows beyond the node: the workload's typical
// pods and the largest node's CPU and GPU capacity (BestFit's scale).
type Cluster struct {
	Typical     []TypicalPod
	MaxCPU      int64
	MaxGPUMilli int64
	// waste is GPUFleet's model of the typical pods (nil: derived on use).
	waste *wasteModel
}

// wasteModel is GPUFleet's waste model of the typical pods. Score calls run
// in parallel: the plugin sets it in PreScore; a Cluster without one gets a
// fresh model per call.
func (c *Cluster) wasteModel() *wasteModel {
	if c.waste != nil {
		return c.waste
	}
	return newWasteModel(c.Typical)
}

// Strategy places a request on a node that fits it: which GPUs, and how good
// the node is (higher is better).
type Strategy interface {
	Name() string
	// Score rates placing r on n and says which GPUs it would use (nil for a
	// CPU-only r). n fits r. n must not be modified.
	Score(c *Cluster, n *Node, r Request) (score int64, gpus []int)
	// Normalize maps the raw scores of all feasible nodes to 0..MaxScore in
	// place, keeping their order.
	Normalize(scores []int64)
}

// NewStrategy returns the named strategy.
func NewStrategy(name string) (Strategy, error) {
	switch name {
	case StrategyBestFit:
		return bestFit{}, nil
	case StrategyFGD:
		return fgd{}, nil
	case StrategySpread:
		return spread{}, nil
	case StrategyGPUFleet:
		return gpuFleet{}, nil
	case StrategyRandom:
		return randomPolicy{}, nil
	case StrategyDotProduct:
		return dotProduct{}, nil
	case StrategyGPUPacking:
		return gpuPacking{}, nil
	case StrategyGPUClustering:
		return gpuClustering{}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q: use one of %v", name, Strategies)
}

// packGPUs is the usual in-node choice: a share goes to the fullest GPU that
// holds it, whole GPUs to the best-connected free set.
func packGPUs(n *Node, r Request) []int {
	switch {
	case r.Count() == 0:
		return nil
	case r.GPUs == 0:
		if g := n.BestFitGPU(r.Milli); g >= 0 {
			return []int{g}
		}
		return nil
	}
	return n.WholeGPUs(r.GPUs)
}

// bestFit prefers the node left with the least CPU and GPU, each relative to
// the largest node (most allocated), and packs shares onto the fullest GPU.
type bestFit struct{}

func (bestFit) Name() string { return StrategyBestFit }

func (bestFit) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	left := 0.5*float64(n.CPUFree-r.CPU)/float64(max(c.MaxCPU, 1)) + 0.5*float64(n.Idle()-r.TotalMilli())/float64(max(c.MaxGPUMilli, 1))
	return int64((1 - left) * MaxScore), packGPUs(n, r)
}

func (bestFit) Normalize(scores []int64) { minMax(scores) }

// spread prefers the node left with the most idle GPU (least allocated; the
// most free CPU for CPU-only pods) and puts shares on the emptiest GPU.
type spread struct{}

func (spread) Name() string { return StrategySpread }

func (spread) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	if r.Count() == 0 || n.Capacity() == 0 {
		return int64(MaxScore * float64(n.CPUFree-r.CPU) / float64(max(c.MaxCPU, 1))), nil
	}
	var gpus []int
	if r.GPUs == 0 {
		if g := n.WorstFitGPU(r.Milli); g >= 0 {
			gpus = []int{g}
		}
	} else {
		gpus = n.WholeGPUs(r.GPUs)
	}
	return int64(MaxScore * float64(n.Idle()-r.TotalMilli()) / float64(n.Capacity())), gpus
}

func (spread) Normalize(scores []int64) { minMax(scores) }

// fgd is the FGD paper's fragmentation gradient descent: the node (and, for a
// share, the GPU) whose expected fragmentation grows least, scored
// sigmoid(-growth in GPUs) x 100, truncated; no normalization.
type fgd struct{}

func (fgd) Name() string { return StrategyFGD }

func (fgd) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	return fragmentationScore(c, n, r)
}

// fragmentationScore is FGD's score of placing r on n: sigmoid(decrease of
// the expected fragmentation in GPUs) x 100, truncated. A share tries every
// GPU that holds it and keeps the best; among equal scores the lowest index.
func fragmentationScore(c *Cluster, n *Node, r Request) (int64, []int) {
	fi := newFragIndex(n, c.Typical)
	before := fi.value()
	score := func(gpus []int) int64 {
		return int64(sigmoid((before-fi.after(n, r, gpus))/MilliPerGPU) * MaxScore)
	}
	if r.GPUs == 0 && r.Milli > 0 {
		g, cost := cheapestGPU(n, r, func(gpus []int) float64 { return -float64(score(gpus)) }, 0, false)
		if g < 0 {
			return 0, nil
		}
		return int64(-cost), []int{g}
	}
	gpus := packGPUs(n, r)
	return score(gpus), gpus
}

// cheapestGPU is the GPU of n holding r's share (r asks for a share) whose
// cost is least, and that cost; costs within tol of each other are equal,
// and among equal ones the fullest GPU wins if fuller, else the lowest
// index. -1 if no GPU holds the share.
func cheapestGPU(n *Node, r Request, cost func(gpus []int) float64, tol float64, fuller bool) (int, float64) {
	best, bestCost := -1, 0.0
	one := []int{0}
	for g, f := range n.Free {
		if f < r.Milli {
			continue
		}
		one[0] = g
		c := cost(one)
		if best < 0 || c < bestCost-tol || fuller && c <= bestCost+tol && f < n.Free[best] {
			best, bestCost = g, c
		}
	}
	return best, bestCost
}

func (fgd) Normalize([]int64) {}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// gpuFleet is gpufleet's own strategy: the node and GPUs whose placement
// least grows the node's expected waste, the milli-GPU that will never be
// allocated if the node keeps receiving the workload's typical pods
// (wasteModel): the expected leftover of each GPU once random typical pods
// that fit have landed on it (a piece that only rare shapes fit counts as
// mostly lost), plus the idle GPU share the node's free CPU cannot feed.
// Unlike FGD's fragmentation, which asks only whether one more pod of each
// shape fits, it looks at how each GPU will end up and at the CPU all the
// node's free GPUs will need. FGD's fragmentation growth is added with a
// small weight (fragmentationWeight).
//
// The growth goes through FGD's coarse mapping (sigmoid(-growth in GPUs) x
// 100, truncated), and nodes that score the same are taken in a fixed order
// (a hash of the name), i.e. first fit among the nodes that are all good
// enough: the trace simulator shows finer rankings, or the fullest node
// first, strand more GPUs. The fixed order also consolidates equal pods,
// such as a Deployment's replicas, on one node instead of the scheduler's
// random pick among equal nodes. Within a node, a share goes to the GPU
// whose growth is least and, among equal ones, to the fullest; whole GPUs
// go to the best NVLink-connected set.
//
// Score returns the coarse score x packScale + the node's order; Normalize
// turns that back into the coarse score, one less for nodes that are not
// first of their score.
type gpuFleet struct{}

// packScale separates the coarse score from the tie-break in raw scores.
const packScale = 1 << 10

func (gpuFleet) Name() string { return StrategyGPUFleet }

// fragmentationWeight is the weight of FGD's fragmentation growth in
// GPUFleet's growth. The expected waste is an average over the workload:
// when CPU is short on every node it rates most GPU placements alike. FGD's
// term still says whether the next pod of each shape fits, which on a
// CPU-bound synthetic trace kept 2.5 points more of the GPUs allocated (as
// many as FGD), for about 0.1 point less on the openb traces
// (docs/gpusim.md).
const fragmentationWeight = 0.2

func (gpuFleet) Score(c *Cluster, n *Node, r Request) (int64, []int) {
	w := c.wasteModel()
	var left float64
	for _, f := range n.Free {
		left += w.left(f)
	}
	idle := n.Idle()
	before := w.waste(left, idle, n.CPUFree)
	fi := newFragIndex(n, c.Typical)
	fragBefore := fi.value()
	// growth of the waste, and of FGD's fragmentation, when r takes gpus.
	growth := func(gpus []int) float64 {
		after := left
		for _, g := range gpus {
			after += w.left(n.Free[g]-r.PerGPU()) - w.left(n.Free[g])
		}
		waste := w.waste(after, idle-int64(len(gpus))*r.PerGPU(), n.CPUFree-r.CPU) - before
		return waste + fragmentationWeight*(fi.after(n, r, gpus)-fragBefore)
	}
	var gpus []int
	var g float64
	if r.GPUs == 0 && r.Milli > 0 {
		// Growths within a micro-GPU are equal (float sums).
		var best int
		if best, g = cheapestGPU(n, r, growth, 1e-6, true); best < 0 {
			return 0, nil
		}
		gpus = []int{best}
	} else {
		gpus = packGPUs(n, r)
		g = growth(gpus)
	}
	return int64(sigmoid(-g/MilliPerGPU)*MaxScore)*packScale + nodeOrder(n.Name), gpus
}

func (gpuFleet) Normalize(scores []int64) {
	first := map[int64]int64{} // coarse score -> best raw score with it
	for _, raw := range scores {
		level := raw / packScale
		if best, ok := first[level]; !ok || raw > best {
			first[level] = raw
		}
	}
	for i, raw := range scores {
		level := raw / packScale
		if raw < first[level] {
			level = max(level-1, 0)
		}
		scores[i] = level
	}
}

// minMax maps scores linearly onto 0..MaxScore (all MaxScore if equal).
func minMax(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := slices.Min(scores), slices.Max(scores)
	for i, s := range scores {
		if hi == lo {
			scores[i] = MaxScore
		} else {
			scores[i] = (s - lo) * MaxScore / (hi - lo)
		}
	}
}

// rank gives the best distinct raw score MaxScore, the next MaxScore-1 and so
// on down to 0: equal raw scores get equal scores, order is kept exactly for
// the best MaxScore distinct values.
func rank(scores []int64) {
	distinct := slices.Clone(scores)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	for i, s := range scores {
		pos, _ := slices.BinarySearch(distinct, s)
		scores[i] = max(0, int64(MaxScore-(len(distinct)-1-pos)))
	}
}
