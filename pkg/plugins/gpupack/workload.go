package gpupack

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// TypicalPod is a pod shape and its share of the workload.
type TypicalPod struct {
	Request
	Weight float64
}

type shapeKey struct {
	cpu    int64
	gpus   int
	milli  int64
	models string
}

func keyOf(r Request) shapeKey {
	return shapeKey{cpu: r.CPU, gpus: r.GPUs, milli: r.Milli, models: strings.Join(r.Models, "|")}
}

func (k shapeKey) request() Request {
	r := Request{CPU: k.cpu, GPUs: k.gpus, Milli: k.milli}
	if k.models != "" {
		r.Models = strings.Split(k.models, "|")
	}
	return r
}

// Workload learns the typical pod shapes from the pods the scheduler sees:
// the last Window pods, grouped by exact (CPU, GPUs, milli-GPU, models), the
// most frequent shapes that together make up Coverage of them, weighted by
// frequency (the FGD paper's definition of the target workload). It is safe
// for concurrent use.
type Workload struct {
	window          int
	coveragePercent int

	mu      sync.Mutex
	seen    map[types.UID]struct{}
	uids    []types.UID // ring of the last window UIDs in seen
	nextUID int
	ring    []shapeKey
	next    int
	counts  map[shapeKey]int
	changed bool
	frozen  bool
	typical []TypicalPod
}

// Freeze stops learning: the typical pods stay what they are now (the
// simulator fixes them from the trace, as the FGD paper does).
func (w *Workload) Freeze() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frozen = true
}

// NewWorkload remembers the last window pods and keeps the shapes covering
// coveragePercent (1..100) of them.
func NewWorkload(window, coveragePercent int) *Workload {
	return &Workload{window: window, coveragePercent: coveragePercent, counts: map[shapeKey]int{}, seen: map[types.UID]struct{}{}}
}

// ObservePod adds the shape of pod uid once, however often it is scheduled
// (retries of a pending pod do not make its shape more typical).
func (w *Workload) ObservePod(uid types.UID, r Request) {
	w.mu.Lock()
	if _, ok := w.seen[uid]; ok {
		w.mu.Unlock()
		return
	}
	if len(w.uids) < w.window {
		w.uids = append(w.uids, uid)
	} else {
		delete(w.seen, w.uids[w.nextUID])
		w.uids[w.nextUID] = uid
		w.nextUID = (w.nextUID + 1) % w.window
	}
	w.seen[uid] = struct{}{}
	w.mu.Unlock()
	w.Observe(r)
}

// Observe adds one pod's shape, forgetting the oldest beyond the window.
func (w *Workload) Observe(r Request) {
	k := keyOf(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.frozen {
		return
	}
	if len(w.ring) < w.window {
		w.ring = append(w.ring, k)
	} else {
		old := w.ring[w.next]
		if w.counts[old]--; w.counts[old] == 0 {
			delete(w.counts, old)
		}
		w.ring[w.next] = k
		w.next = (w.next + 1) % w.window
	}
	w.counts[k]++
	w.changed = true
}

// Typical returns the typical pods, most frequent first. The slice is shared:
// do not modify it.
func (w *Workload) Typical() []TypicalPod {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.changed {
		return w.typical
	}
	w.changed = false
	type kc struct {
		k shapeKey
		n int
	}
	all := make([]kc, 0, len(w.counts))
	total := 0
	for k, n := range w.counts {
		all = append(all, kc{k, n})
		total += n
	}
	// Most frequent first; equal counts: larger shapes first, so the order
	// never depends on map iteration.
	slices.SortFunc(all, func(a, b kc) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(b.k.cpu, a.k.cpu), cmp.Compare(b.k.request().PerGPU(), a.k.request().PerGPU()),
			cmp.Compare(b.k.gpus, a.k.gpus), cmp.Compare(b.k.models, a.k.models))
	})
	kept, cum := 0, 0
	for kept < len(all) && cum*100 < w.coveragePercent*total {
		cum += all[kept].n
		kept++
	}
	typical := make([]TypicalPod, kept)
	for i := range typical {
		typical[i] = TypicalPod{Request: all[i].k.request(), Weight: float64(all[i].n) / float64(cum)}
	}
	w.typical = typical
	return typical
}
