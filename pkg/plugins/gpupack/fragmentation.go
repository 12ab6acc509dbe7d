package gpupack

// Fragment is the milli-GPU of n that a pod of shape r could not use (the
// FGD paper's definition): all idle GPU when the pod cannot run on n at all
// (too little CPU, no GPU or GPUs with room, wrong model) or needs no GPU;
// otherwise the idle share of each GPU too small for the pod.
func Fragment(n *Node, r Request) int64 {
	idle := n.Idle()
	if idle == 0 {
		return 0
	}
	if r.Count() == 0 || !r.AllowsModel(n.Model, n.ModelKnown) || n.CPUFree < r.CPU || !n.FitsGPU(r) {
		return idle
	}
	per := r.PerGPU()
	var frag int64
	for _, f := range n.Free {
		if f < per {
			frag += f
		}
	}
	return frag
}

// Fragmentation is n's expected fragment for the workload: the
// popularity-weighted sum of Fragment over the typical pods, in milli-GPU.
func Fragmentation(n *Node, typical []TypicalPod) float64 {
	var f float64
	for _, t := range typical {
		f += t.Weight * float64(Fragment(n, t.Request))
	}
	return f
}

// fragIndex is Fragmentation of one node broken down per typical pod, so the
// fragmentation after placing a pod on a few GPUs costs one pass over the
// typical pods instead of one over typical pods times GPUs.
type fragIndex struct {
	typical []TypicalPod
	idle    int64
	cpuFree int64
	terms   []fragTerm
}

type fragTerm struct {
	allowed bool  // the shape needs a GPU and accepts the node's model
	usable  int   // GPUs with at least the shape's per-GPU share free
	small   int64 // free share of the GPUs with less than that
}

func newFragIndex(n *Node, typical []TypicalPod) *fragIndex {
	fi := &fragIndex{typical: typical, idle: n.Idle(), cpuFree: n.CPUFree, terms: make([]fragTerm, len(typical))}
	for i, t := range typical {
		term := fragTerm{allowed: t.Count() > 0 && t.AllowsModel(n.Model, n.ModelKnown)}
		per := t.PerGPU()
		for _, f := range n.Free {
			if f >= per {
				term.usable++
			} else {
				term.small += f
			}
		}
		fi.terms[i] = term
	}
	return fi
}

func (fi *fragIndex) sum(idle, cpuFree int64, term func(i int) fragTerm) float64 {
	if idle == 0 {
		return 0
	}
	var total float64
	for i, t := range fi.typical {
		ft := term(i)
		frag := idle
		if ft.allowed && cpuFree >= t.CPU && ft.usable >= t.Count() {
			frag = ft.small
		}
		total += t.Weight * float64(frag)
	}
	return total
}

// value is Fragmentation(n, typical) of the indexed node.
func (fi *fragIndex) value() float64 {
	return fi.sum(fi.idle, fi.cpuFree, func(i int) fragTerm { return fi.terms[i] })
}

// after is the node's Fragmentation once r holds the given GPUs of n (the
// node the index was built from).
func (fi *fragIndex) after(n *Node, r Request, gpus []int) float64 {
	per := r.PerGPU()
	return fi.sum(fi.idle-int64(len(gpus))*per, fi.cpuFree-r.CPU, func(i int) fragTerm {
		ft := fi.terms[i]
		tper := fi.typical[i].PerGPU()
		for _, g := range gpus {
			f, f2 := n.Free[g], n.Free[g]-per
			if f >= tper {
				ft.usable--
			} else {
				ft.small -= f
			}
			if f2 >= tper {
				ft.usable++
			} else {
				ft.small += f2
			}
		}
		return ft
	})
}
