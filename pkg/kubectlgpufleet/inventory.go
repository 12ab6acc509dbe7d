package kubectlgpufleet

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// milliPerGPU is one whole GPU.
const milliPerGPU = 1000

// Node is one GPU node's allocation.
type Node struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	GPUs  []GPU  `json:"gpus"`
	// Unplaced are GPU pods on the node whose gpufleet.io/gpu-indices is
	// missing or unusable (bound by another scheduler, or an old
	// annotation): their share counts against no particular GPU.
	Unplaced []Share `json:"unplaced,omitempty"`
	// Utilization is the node's mean GPU utilization (0..1) from the
	// custom metrics API, when served.
	Utilization *float64 `json:"utilization,omitempty"`
}

// GPU is one GPU of a node.
type GPU struct {
	Index     int     `json:"index"`
	Allocated int64   `json:"allocatedMilli"`
	Free      int64   `json:"freeMilli"`
	Unhealthy bool    `json:"unhealthy,omitempty"`
	Pods      []Share `json:"pods,omitempty"`
}

// Share is a pod's part of a GPU.
type Share struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Milli is the milli-GPU the pod holds of this GPU (1000: the whole GPU).
	Milli int64 `json:"milli"`
	// Problem says why an unplaced pod has no GPU (unplaced only).
	Problem string `json:"problem,omitempty"`
}

// Totals sums a node's GPUs; unplaced pods count as allocated, and as
// taken from the free total, though on no known GPU.
func (n Node) Totals() (gpus int, allocated, free int64) {
	for _, g := range n.GPUs {
		allocated += g.Allocated
		free += g.Free
	}
	for _, u := range n.Unplaced {
		allocated += u.Milli
		free -= u.Milli
	}
	return len(n.GPUs), allocated, max(free, 0)
}

// Request is a pod's GPU request: whole GPUs or a share of one.
type Request struct {
	GPUs  int64
	Milli int64
}

// PerGPU is the milli-GPU the request takes of each GPU it holds.
func (r Request) PerGPU() int64 {
	if r.GPUs > 0 {
		return milliPerGPU
	}
	return r.Milli
}

// Count is the number of GPUs the request holds.
func (r Request) Count() int {
	switch {
	case r.GPUs > 0:
		return int(r.GPUs)
	case r.Milli > 0:
		return 1
	}
	return 0
}

func (r Request) String() string {
	switch {
	case r.GPUs == 1:
		return "1 GPU"
	case r.GPUs > 1:
		return fmt.Sprintf("%d GPUs", r.GPUs)
	case r.Milli > 0:
		return fmt.Sprintf("%d milli-GPU of one GPU", r.Milli)
	}
	return "no GPU"
}

// RequestOf is a pod's effective GPU request, counted as the kubelet does
// (init containers, sidecars and overhead included).
func RequestOf(pod *corev1.Pod) Request {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	g := reqs[names.ResourceGPU]
	m := reqs[names.ResourceGPUMilli]
	r := Request{GPUs: g.Value()}
	if r.GPUs == 0 {
		r.Milli = min(m.Value(), milliPerGPU)
	}
	return r
}

// gpuCount is a node's number of GPUs: its nvidia.com/gpu, else its
// gpufleet.io/gpu-milli in whole GPUs, or the agent's count label.
// The kubelet leaves unhealthy GPUs out of allocatable, so the label wins
// when it says more (indices keep naming the same GPUs).
func gpuCount(n *corev1.Node) int {
	count := 0
	if q, ok := n.Status.Allocatable[names.ResourceGPU]; ok && q.Value() > 0 {
		count = int(min(q.Value(), 1024))
	} else if q, ok := n.Status.Allocatable[names.ResourceGPUMilli]; ok && q.Value() > 0 {
		count = int(min(q.Value()/milliPerGPU, 1024))
	}
	if c, err := strconv.Atoi(n.Labels[names.LabelGPUCount]); err == nil && c > count && c <= 1024 {
		count = c
	}
	return count
}

// Active says whether a pod holds its node's resources: bound and not
// finished.
func Active(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// BuildInventory is the GPU allocation of the GPU nodes among nodes, from
// the active pods bound to them. Nodes, GPUs and pods come sorted.
func BuildInventory(nodes []corev1.Node, pods []corev1.Pod) []Node {
	byNode := map[string][]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		if Active(p) && RequestOf(p).Count() > 0 {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	var out []Node
	for i := range nodes {
		n := &nodes[i]
		count := gpuCount(n)
		if count == 0 {
			continue
		}
		model, ok := gpumodel.FromNodeLabels(n.Labels)
		if !ok {
			model = "unknown"
		}
		node := Node{Name: n.Name, Model: model, GPUs: make([]GPU, count)}
		unhealthy, _ := names.ParseGPUIndices(n.Annotations[names.AnnotationGPUUnhealthy], count)
		for g := range node.GPUs {
			node.GPUs[g] = GPU{Index: g, Unhealthy: slices.Contains(unhealthy, g)}
		}
		podsHere := byNode[n.Name]
		slices.SortFunc(podsHere, func(a, b *corev1.Pod) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
		for _, p := range podsHere {
			r := RequestOf(p)
			v, has := p.Annotations[names.AnnotationGPUIndices]
			idx, err := names.ParseGPUIndices(v, count)
			switch {
			case !has:
				node.Unplaced = append(node.Unplaced, Share{p.Namespace, p.Name, int64(r.Count()) * r.PerGPU(), "no " + names.AnnotationGPUIndices + " annotation"})
				continue
			case err != nil:
				node.Unplaced = append(node.Unplaced, Share{p.Namespace, p.Name, int64(r.Count()) * r.PerGPU(), err.Error()})
				continue
			case len(idx) != r.Count():
				node.Unplaced = append(node.Unplaced, Share{p.Namespace, p.Name, int64(r.Count()) * r.PerGPU(), fmt.Sprintf("%s=%q names %d GPUs for %s", names.AnnotationGPUIndices, v, len(idx), r)})
				continue
			}
			for _, g := range idx {
				node.GPUs[g].Allocated += r.PerGPU()
				node.GPUs[g].Pods = append(node.GPUs[g].Pods, Share{Namespace: p.Namespace, Pod: p.Name, Milli: r.PerGPU()})
			}
		}
		for g := range node.GPUs {
			if !node.GPUs[g].Unhealthy {
				node.GPUs[g].Free = max(0, milliPerGPU-node.GPUs[g].Allocated)
			}
		}
		out = append(out, node)
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
