package gpupack

import (
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// assignment is where a reserved pod's GPUs are.
type assignment struct {
	node string
	gpus []int
}

// Ledger is the per-node, per-GPU account of milli-GPU. It is derived from
// the scheduler's own node snapshot, so it sees exactly the pods the
// scheduler counts (bound, assumed, nominated): a pod's GPUs come from its
// gpufleet.io/gpu-indices annotation (bound pods, and so after a restart),
// else from the reservation this scheduler made (assumed pods), else the
// ledger places it itself so its share is still counted (pods bound by
// another scheduler). Built nodes are cached per NodeInfo generation.
type Ledger struct {
	mu       sync.RWMutex
	reserved map[types.UID]assignment
	// versions counts the reservation changes per node: a cached account
	// is used only if its NodeInfo generation and its node's version are
	// those it was built from.
	versions map[string]uint64
	cache    map[string]cachedNode
}

type cachedNode struct {
	generation int64
	version    uint64
	node       *Node
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{reserved: map[types.UID]assignment{}, versions: map[string]uint64{}, cache: map[string]cachedNode{}}
}

// Reserve records that pod uid holds gpus on node until Forget.
func (l *Ledger) Reserve(uid types.UID, node string, gpus []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.reserved[uid]; ok {
		l.versions[old.node]++
	}
	l.reserved[uid] = assignment{node: node, gpus: gpus}
	l.versions[node]++
}

// Forget drops pod uid's reservation (Unreserve, or the pod is gone).
func (l *Ledger) Forget(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.reserved[uid]; ok {
		delete(l.reserved, uid)
		l.versions[a.node]++
	}
}

// Reserved returns pod uid's reserved GPUs.
func (l *Ledger) Reserved(uid types.UID) ([]int, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	a, ok := l.reserved[uid]
	return a.gpus, ok
}

// Node returns the GPU account of a node. The result is shared: clone it
// before changing it.
func (l *Ledger) Node(logger klog.Logger, ni fwk.NodeInfo) *Node {
	node := ni.Node()
	if node == nil {
		return &Node{}
	}
	gen := ni.GetGeneration()
	l.mu.RLock()
	c, ok := l.cache[node.Name]
	version := l.versions[node.Name]
	l.mu.RUnlock()
	if ok && c.generation == gen && c.version == version {
		return c.node
	}
	n := l.build(logger, ni)
	l.mu.Lock()
	if l.versions[node.Name] == version {
		l.cache[node.Name] = cachedNode{generation: gen, version: version, node: n}
	}
	l.mu.Unlock()
	return n
}

func (l *Ledger) build(logger klog.Logger, ni fwk.NodeInfo) *Node {
	node := ni.Node()
	alloc := ni.GetAllocatable()
	count := int(gpuCount(alloc))
	unhealthy := unhealthyGPUs(logger, node, &count)
	n := &Node{Name: node.Name, Free: make([]int64, count), CPUFree: alloc.GetMilliCPU() - ni.GetRequested().GetMilliCPU(), Unhealthy: unhealthy}
	for i := range n.Free {
		n.Free[i] = MilliPerGPU
	}
	for _, i := range unhealthy {
		n.Free[i] = 0
	}
	n.Model, n.ModelKnown = gpumodel.FromNodeLabels(node.Labels)
	if v := node.Annotations[names.AnnotationGPUTopology]; v != "" && count > 1 {
		if links, err := ParseTopology(v, count); err == nil {
			n.Links = links
		} else {
			logger.V(2).Info("Ignoring malformed GPU topology annotation", "node", klog.KObj(node), "annotation", names.AnnotationGPUTopology, "err", err)
		}
	}
	if count == 0 {
		return n
	}
	type unplaced struct {
		pod *corev1.Pod
		r   Request
	}
	var later []unplaced
	l.mu.RLock()
	for _, pi := range ni.GetPods() {
		pod := pi.GetPod()
		scalars := pi.CalculateResource().Resource.GetScalarResources()
		r := Request{GPUs: int(scalars[names.ResourceGPU]), Milli: scalars[names.ResourceGPUMilli]}
		if r.GPUs > 0 {
			r.Milli = 0
		}
		if r.Count() == 0 {
			continue
		}
		r.Milli = min(r.Milli, MilliPerGPU)
		if n.Kinds == nil {
			n.Kinds = map[int]int{}
		}
		n.Kinds[kind(r)]++
		if v, ok := pod.Annotations[names.AnnotationGPUIndices]; ok {
			gpus, err := ParseIndices(v, count)
			if err == nil && len(gpus) == r.Count() {
				take(n, r, gpus)
				continue
			}
			logger.V(2).Info("Bound pod has unusable GPU indices; placing its request myself", "pod", klog.KObj(pod), "node", klog.KObj(node), "indices", v, "err", err)
		}
		if a, ok := l.reserved[pod.UID]; ok && a.node == node.Name && validIndices(a.gpus, r.Count(), count) {
			take(n, r, a.gpus)
			continue
		}
		later = append(later, unplaced{pod, r})
	}
	l.mu.RUnlock()
	for _, u := range later {
		n.Unattributed++
		gpus := packGPUs(n, u.r)
		if gpus == nil { // over-committed by someone else: count it where it hurts least
			gpus = n.fullestFirst(u.r.Count())
		}
		take(n, u.r, gpus)
	}
	return n
}

// take subtracts r from the given GPUs without going below zero.
func take(n *Node, r Request, gpus []int) {
	for _, g := range gpus {
		n.Free[g] = max(0, n.Free[g]-r.PerGPU())
	}
}

// fullestFirst returns count GPU indices, those with the most room first.
func (n *Node) fullestFirst(count int) []int {
	idx := make([]int, 0, len(n.Free))
	used := make([]bool, len(n.Free))
	for len(idx) < count && len(idx) < len(n.Free) {
		best := -1
		for i, f := range n.Free {
			if !used[i] && (best < 0 || f > n.Free[best]) {
				best = i
			}
		}
		used[best] = true
		idx = append(idx, best)
	}
	return idx
}

// gpuCount is a node's number of GPUs: its nvidia.com/gpu, else its
// gpufleet.io/gpu-milli in whole GPUs.
func gpuCount(alloc fwk.Resource) int64 {
	if n := alloc.GetScalarResources()[names.ResourceGPU]; n > 0 {
		return n
	}
	return alloc.GetScalarResources()[names.ResourceGPUMilli] / MilliPerGPU
}

// unhealthyGPUs reads the agent's gpufleet.io/gpu.unhealthy annotation.
// The kubelet leaves unhealthy devices out of the node's allocatable, so
// while some GPU is unhealthy the node's GPU count comes from the agent's
// gpufleet.io/gpu.count label instead (count is raised to it): indices keep
// naming the same GPUs.
func unhealthyGPUs(logger klog.Logger, node *corev1.Node, count *int) []int {
	v := node.Annotations[names.AnnotationGPUUnhealthy]
	if v == "" {
		return nil
	}
	total := *count
	if l, err := strconv.Atoi(node.Labels[names.LabelGPUCount]); err == nil && l > total && l <= maxGPUsPerNode {
		total = l
	}
	gpus, err := names.ParseGPUIndices(v, total)
	if err != nil {
		logger.V(2).Info("Ignoring malformed unhealthy-GPU annotation", "node", klog.KObj(node), "annotation", names.AnnotationGPUUnhealthy, "err", err)
		return nil
	}
	*count = total
	return gpus
}

// maxGPUsPerNode bounds a GPU count read from a label.
const maxGPUsPerNode = 1 << 10

// validIndices says whether gpus are count distinct GPUs of a node with
// gpuCount GPUs (a node can lose GPUs after a pod got them).
func validIndices(gpus []int, count, gpuCount int) bool {
	if len(gpus) != count {
		return false
	}
	for i, g := range gpus {
		if g < 0 || g >= gpuCount || slices.Contains(gpus[:i], g) {
			return false
		}
	}
	return true
}
