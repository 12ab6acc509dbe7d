package deviceplugin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// steerError is a preferred allocation the annotation asks for but the
// node cannot give: the kubelet's view and the scheduler's disagree.
type steerError struct{ msg string }

func (e *steerError) Error() string { return e.msg }

func steerErrorf(format string, args ...any) error {
	return &steerError{msg: fmt.Sprintf(format, args...)}
}

// preferred returns the device IDs of resource the kubelet should allocate
// for a container of the pod being admitted (nil a: no pod qualified):
// the annotated GPUs' IDs, or, without an annotation, a choice of the
// plugin's own. available and mustInclude are the kubelet's; the result
// holds mustInclude and size IDs in all where the node has them.
func (inv *inventory) preferred(resource string, a *admission, v *nodeView, available, mustInclude []string, size int) ([]string, error) {
	if a != nil {
		gpus, ok, err := inv.annotatedGPUs(a.pod)
		if err != nil {
			return nil, steerErrorf("pod %s: %v", podKey(a.pod.Namespace, a.pod.Name), err)
		}
		if ok {
			if resource == ResourceWhole {
				return inv.steerWhole(a, gpus, v, available, mustInclude, size)
			}
			return inv.steerMilli(a, gpus, v, available, mustInclude, size)
		}
	}
	if resource == ResourceWhole {
		return inv.chooseWhole(v, available, mustInclude, size), nil
	}
	return inv.chooseMilli(v, available, mustInclude, size), nil
}

// steerWhole takes the annotated GPUs the pod's other containers do not
// hold yet, in the annotation's order.
func (inv *inventory) steerWhole(a *admission, gpus []*GPU, v *nodeView, available, mustInclude []string, size int) ([]string, error) {
	who := podKey(a.pod.Namespace, a.pod.Name)
	annotated := map[string]bool{}
	for _, g := range gpus {
		annotated[wholeID(g.UUID)] = true
	}
	for _, id := range mustInclude {
		if !annotated[id] {
			g, _ := inv.gpuOf(ResourceWhole, id)
			return nil, steerErrorf("pod %s: the kubelet must reuse GPU %s of an init container, which is not in its annotation %s=%s", who, gpuName(g, id), names.AnnotationGPUIndices, a.pod.Annotations[names.AnnotationGPUIndices])
		}
	}
	held := map[string]bool{}
	for _, devs := range a.devices.Containers {
		for _, id := range devs[ResourceWhole] {
			held[id] = true
		}
	}
	avail := setOf(available)
	out := slices.Clone(mustInclude)
	var why []string
	for _, g := range gpus {
		if len(out) >= size {
			break
		}
		id := wholeID(g.UUID)
		switch {
		case slices.Contains(out, id):
		case held[id]:
			why = append(why, fmt.Sprintf("GPU %d is held by another container of the pod", g.Index))
		case v.milli[g.Index] > 0:
			why = append(why, fmt.Sprintf("GPU %d has %d milli given out in shares (%s)", g.Index, v.milli[g.Index], refs(v.sharers[g.Index])))
		case !avail[id]:
			if r, ok := v.whole[g.Index]; ok {
				why = append(why, fmt.Sprintf("GPU %d is given to %s", g.Index, r))
			} else {
				why = append(why, fmt.Sprintf("GPU %d is not available (unhealthy or in use)", g.Index))
			}
		default:
			out = append(out, id)
		}
	}
	if len(out) < size {
		return nil, steerErrorf("pod %s: its annotation %s=%s names GPUs this container cannot get whole on this node: %s", who, names.AnnotationGPUIndices, a.pod.Annotations[names.AnnotationGPUIndices], strings.Join(why, "; "))
	}
	return out, nil
}

// steerMilli takes free milli IDs of the one annotated GPU, lowest first.
func (inv *inventory) steerMilli(a *admission, gpus []*GPU, v *nodeView, available, mustInclude []string, size int) ([]string, error) {
	who := podKey(a.pod.Namespace, a.pod.Name)
	if len(gpus) != 1 {
		return nil, steerErrorf("pod %s requests %s, a share of one GPU, but its annotation %s=%s names %d GPUs", who, ResourceMilli, names.AnnotationGPUIndices, a.pod.Annotations[names.AnnotationGPUIndices], len(gpus))
	}
	g := gpus[0]
	if r, ok := v.whole[g.Index]; ok {
		return nil, steerErrorf("pod %s: GPU %d of its annotation is given whole to %s; a GPU given out whole is not shared", who, g.Index, r)
	}
	for _, id := range mustInclude {
		if u, _, err := parseMilliID(id); err != nil || u != g.UUID {
			return nil, steerErrorf("pod %s: the kubelet must reuse device %s of an init container, which is not on GPU %d of its annotation", who, id, g.Index)
		}
	}
	out := slices.Clone(mustInclude)
	out = append(out, freeMilli(g, available, out, size-len(out))...)
	if len(out) < size {
		return nil, steerErrorf("pod %s: GPU %d of its annotation has %d milli free for it on this node, the container asks %d (%d given out to %s)", who, g.Index, len(out), size, v.milli[g.Index], refs(v.sharers[g.Index]))
	}
	return out, nil
}

// freeMilli returns up to n milli IDs of GPU g from available that are not
// in taken, lowest number first.
func freeMilli(g *GPU, available, taken []string, n int) []string {
	if n <= 0 {
		return nil
	}
	skip := setOf(taken)
	var ks []int
	for _, id := range available {
		if skip[id] {
			continue
		}
		if u, k, err := parseMilliID(id); err == nil && u == g.UUID {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	out := make([]string, 0, min(n, len(ks)))
	for _, k := range ks[:min(n, len(ks))] {
		out = append(out, milliID(g.UUID, k))
	}
	return out
}

// chooseWhole picks whole GPUs for a pod without an annotation: among
// the free GPUs with no shares given out, the set with the most NVLinks
// among its members (with mustInclude), the lowest indices on ties;
// exhaustive up to maxExhaustive candidates, greedy beyond.
func (inv *inventory) chooseWhole(v *nodeView, available, mustInclude []string, size int) []string {
	avail := setOf(available)
	out := slices.Clone(mustInclude)
	var chosen []int
	for _, id := range mustInclude {
		if g, err := inv.gpuOf(ResourceWhole, id); err == nil {
			chosen = append(chosen, g.Index)
		}
	}
	var cands []int
	for _, g := range inv.gpus {
		if !slices.Contains(chosen, g.Index) && avail[wholeID(g.UUID)] && v.milli[g.Index] == 0 {
			cands = append(cands, g.Index)
		}
	}
	slices.Sort(cands)
	need := size - len(out)
	if need <= 0 {
		return out
	}
	var pick []int
	switch {
	case need >= len(cands):
		pick = cands
	case len(cands) <= maxExhaustive:
		pick = inv.bestLinked(chosen, cands, need)
	default:
		pick = inv.greedyLinked(chosen, cands, need)
	}
	for _, i := range pick {
		out = append(out, wholeID(inv.byIndex[i].UUID))
	}
	return out
}

// maxExhaustive bounds the candidates chooseWhole tries every subset of.
const maxExhaustive = 16

// links counts the NVLinks between GPU i and the GPUs of set.
func (inv *inventory) links(i int, set []int) int {
	n := 0
	for _, j := range set {
		n += inv.byIndex[i].Links[j]
	}
	return n
}

// bestLinked returns the need candidates (in ascending order) that, with
// chosen, have the most NVLinks among them; the first such set in
// lexicographic order.
func (inv *inventory) bestLinked(chosen, cands []int, need int) []int {
	var best []int
	bestLinks := -1
	cur := make([]int, 0, need)
	var walk func(from, links int)
	walk = func(from, links int) {
		if len(cur) == need {
			if links > bestLinks {
				best, bestLinks = slices.Clone(cur), links
			}
			return
		}
		for k := from; k <= len(cands)-(need-len(cur)); k++ {
			i := cands[k]
			add := inv.links(i, chosen) + inv.links(i, cur)
			cur = append(cur, i)
			walk(k+1, links+add)
			cur = cur[:len(cur)-1]
		}
	}
	walk(0, 0)
	return best
}

// greedyLinked adds, need times, the candidate with the most NVLinks to
// the set so far (lowest index on ties).
func (inv *inventory) greedyLinked(chosen, cands []int, need int) []int {
	set := slices.Clone(chosen)
	var out []int
	for range need {
		best, bestLinks := -1, -1
		for _, i := range cands {
			if slices.Contains(set, i) {
				continue
			}
			if l := inv.links(i, set); l > bestLinks {
				best, bestLinks = i, l
			}
		}
		set = append(set, best)
		out = append(out, best)
	}
	return out
}

// chooseMilli picks a share for a pod without an annotation: the fullest
// GPU that holds it and is not given out whole (best fit), lowest index on
// ties.
func (inv *inventory) chooseMilli(v *nodeView, available, mustInclude []string, size int) []string {
	free := map[int]int{}
	for _, id := range available {
		if g, err := inv.gpuOf(ResourceMilli, id); err == nil {
			free[g.Index]++
		}
	}
	var best *GPU
	for i := range inv.gpus {
		g := &inv.gpus[i]
		if _, whole := v.whole[g.Index]; whole || free[g.Index] < size-len(mustInclude) {
			continue
		}
		if len(mustInclude) > 0 {
			if u, _, err := parseMilliID(mustInclude[0]); err != nil || u != g.UUID {
				continue
			}
		}
		if best == nil || free[g.Index] < free[best.Index] {
			best = g
		}
	}
	if best == nil {
		return slices.Clone(mustInclude)
	}
	return append(slices.Clone(mustInclude), freeMilli(best, available, mustInclude, size-len(mustInclude))...)
}

func setOf(ids []string) map[string]bool {
	s := make(map[string]bool, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

func refs(rs []containerRef) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

func (r containerRef) String() string { return r.Namespace + "/" + r.Pod + "/" + r.Container }

func gpuName(g *GPU, id string) string {
	if g == nil {
		return id
	}
	return fmt.Sprintf("%d (%s)", g.Index, g.UUID)
}
