package cpu

// kernel is a micro-kernel together with the weight layout it reads and the
// blocking that suits it. Load packs a model's weights for the kernel that
// is active then (activeKernel) and the packed layers keep it, so a model
// always runs the kernel its weights were packed for.
type kernel struct {
	name string
	// mr is the rows of the output one micro-kernel call computes; rows
	// that do not fill a call (a batch of 7 with mr = 6) are computed one
	// at a time.
	mr int
	// nr is the columns one call computes: the width of a weight panel.
	nr int
	// kcMax is the longest block of the shared dimension one call runs
	// over (see plan.go).
	kcMax int
	// minParallel is the smallest layer, in floating-point operations,
	// that is split across goroutines (see plan.go).
	minParallel int
	// tile computes tile t of a layer's run.
	tile func(r *layerRun, t int)
}

// calls is how many micro-kernel calls cover rows rows of one panel.
func (k *kernel) calls(rows int) int { return rows/k.mr + rows%k.mr }

// scalarKernel runs on every CPU: a 2 x 4 register-blocked loop in Go.
var scalarKernel = kernel{
	name:        "scalar",
	mr:          scalarMR,
	nr:          scalarNR,
	kcMax:       kcScalar,
	minParallel: minParallelScalar,
	tile:        (*layerRun).tileScalar,
}

// useSIMD lets Load pick simdKernel when this CPU has one (see
// kernel_amd64.go). Tests clear it to force the scalar kernel.
var useSIMD = true

// activeKernel is the kernel Load packs new models for.
func activeKernel() *kernel {
	if useSIMD && simdKernel != nil {
		return simdKernel
	}
	return &scalarKernel
}
