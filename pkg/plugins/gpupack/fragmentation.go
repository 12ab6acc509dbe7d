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
