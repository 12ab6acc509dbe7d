package gpupack

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Node is one node's GPUs as the ledger sees them: free milli-GPU per GPU
// (index = device index), the model, the free CPU and the NVLink links.
type Node struct {
	Name string
	// Model is the GPU model (gpumodel.FromNodeLabels); ModelKnown is false
	// when the labels do not say.
	Model      string
	ModelKnown bool
	// Free is each GPU's unallocated milli-GPU, 0..1000.
	Free []int64
	// CPUFree is allocatable minus requested millicores.
	CPUFree int64
	// Links[i][j] is the number of NVLinks between GPUs i and j; nil when
	// the node publishes no topology.
	Links [][]int
	// Unattributed counts pods holding GPUs of this node without saying
	// which (bound by another scheduler): the ledger placed them itself.
	Unattributed int
	// Kinds counts the node's GPU pods by kind: 0 for shares of one GPU,
	// k for pods of k whole GPUs.
	Kinds map[int]int
	// Unhealthy are GPUs the agent reports failed; their Free is 0.
	Unhealthy []int
}

// kind is the Kinds key of a GPU request.
func kind(r Request) int { return r.GPUs }

// Idle is the node's unallocated milli-GPU.
func (n *Node) Idle() int64 {
	var s int64
	for _, f := range n.Free {
		s += f
	}
	return s
}

// Capacity is the node's milli-GPU.
func (n *Node) Capacity() int64 { return int64(len(n.Free)) * MilliPerGPU }

// Clone returns a copy whose Free can be changed.
func (n *Node) Clone() *Node {
	c := *n
	c.Free = slices.Clone(n.Free)
	return &c
}

// usable counts the GPUs with at least per milli-GPU free.
func (n *Node) usable(per int64) int {
	c := 0
	for _, f := range n.Free {
		if f >= per {
			c++
		}
	}
	return c
}

// FitsGPU says whether the node's GPUs can take r (model not considered).
func (n *Node) FitsGPU(r Request) bool {
	return r.Count() == 0 || n.usable(r.PerGPU()) >= r.Count()
}

// Take allocates r on the given GPUs.
func (n *Node) Take(r Request, gpus []int) {
	for _, g := range gpus {
		n.Free[g] -= r.PerGPU()
	}
	n.CPUFree -= r.CPU
}

// Release gives back what Take took.
func (n *Node) Release(r Request, gpus []int) {
	for _, g := range gpus {
		n.Free[g] += r.PerGPU()
	}
	n.CPUFree += r.CPU
}

// CanTake says whether every given GPU has r's share free.
func (n *Node) CanTake(r Request, gpus []int) bool {
	if len(gpus) != r.Count() {
		return false
	}
	return validIndices(gpus, r.Count(), len(n.Free)) && !slices.ContainsFunc(gpus, func(g int) bool { return n.Free[g] < r.PerGPU() })
}

// BestFitGPU is the GPU with the least free share that still holds per
// (lowest index on ties), or -1.
func (n *Node) BestFitGPU(per int64) int {
	best := -1
	for i, f := range n.Free {
		if f >= per && (best < 0 || f < n.Free[best]) {
			best = i
		}
	}
	return best
}

// WorstFitGPU is the GPU with the most free share (lowest index on ties)
// that holds per, or -1.
func (n *Node) WorstFitGPU(per int64) int {
	best := -1
	for i, f := range n.Free {
		if f >= per && (best < 0 || f > n.Free[best]) {
			best = i
		}
	}
	return best
}

// WholeGPUs picks count fully free GPUs: the best NVLink-connected set when
// the node publishes its topology, else the lowest indices. nil if the node
// has too few.
func (n *Node) WholeGPUs(count int) []int {
	var free []int
	for i, f := range n.Free {
		if f >= MilliPerGPU {
			free = append(free, i)
		}
	}
	if len(free) < count {
		return nil
	}
	if count <= 1 || n.Links == nil {
		return free[:count]
	}
	return bestConnected(free, count, n.Links)
}

// bestConnected picks count of the candidate GPUs with the most NVLinks among
// them (ties: lexicographically lowest indices). Small sets are searched
// exhaustively; large ones grow greedily from each start GPU.
func bestConnected(cands []int, count int, links [][]int) []int {
	score := func(set []int) int {
		s := 0
		for a := 0; a < len(set); a++ {
			for b := a + 1; b < len(set); b++ {
				s += links[set[a]][set[b]]
			}
		}
		return s
	}
	var best []int
	bestScore := -1
	if len(cands) <= 12 {
		set := make([]int, 0, count)
		var rec func(start int)
		rec = func(start int) {
			if len(set) == count {
				if s := score(set); s > bestScore {
					bestScore, best = s, slices.Clone(set)
				}
				return
			}
			for i := start; i <= len(cands)-(count-len(set)); i++ {
				set = append(set, cands[i])
				rec(i + 1)
				set = set[:len(set)-1]
			}
		}
		rec(0)
		return best
	}
	for _, start := range cands {
		set := []int{start}
		for len(set) < count {
			next, nextGain := -1, -1
			for _, c := range cands {
				if slices.Contains(set, c) {
					continue
				}
				gain := 0
				for _, s := range set {
					gain += links[s][c]
				}
				if gain > nextGain {
					next, nextGain = c, gain
				}
			}
			set = append(set, next)
		}
		slices.Sort(set)
		if s := score(set); s > bestScore {
			bestScore, best = s, set
		}
	}
	return best
}

// ParseTopology reads the agent's gpufleet.io/gpu.topology annotation
// ("0-1:2,0-3:1": GPUs 0 and 1 have two NVLinks) for a node with gpuCount
// GPUs into a symmetric link matrix.
func ParseTopology(v string, gpuCount int) ([][]int, error) {
	if gpuCount < 0 {
		return nil, fmt.Errorf("a node cannot have %d GPUs", gpuCount)
	}
	links := make([][]int, gpuCount)
	for i := range links {
		links[i] = make([]int, gpuCount)
	}
	for _, part := range strings.Split(v, ",") {
		pair, count, ok := strings.Cut(strings.TrimSpace(part), ":")
		a, b, ok2 := strings.Cut(pair, "-")
		if !ok || !ok2 {
			return nil, fmt.Errorf("topology entry %q is not of the form i-j:n", part)
		}
		i, err1 := strconv.Atoi(a)
		j, err2 := strconv.Atoi(b)
		n, err3 := strconv.Atoi(count)
		if err1 != nil || err2 != nil || err3 != nil || n < 0 {
			return nil, fmt.Errorf("topology entry %q is not of the form i-j:n with non-negative integers", part)
		}
		if i < 0 || j < 0 || i >= gpuCount || j >= gpuCount || i == j {
			return nil, fmt.Errorf("topology entry %q names a GPU pair that does not exist on a node with %d GPUs", part, gpuCount)
		}
		links[i][j], links[j][i] = n, n
	}
	return links, nil
}
