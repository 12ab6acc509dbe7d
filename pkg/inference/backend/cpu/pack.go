package cpu

import "github.com/gpufleet/gpufleet/pkg/inference/backend"

// packedLayer is a dense layer in a kernel's layout. The weights are cut
// into panels of nr = kernel.nr output columns; panel p holds, for
// k = 0..in-1, the nr values W[k][p*nr : p*nr+nr] one after another, so
// the micro-kernel reads a panel as a single contiguous stream. The last
// panel and the bias are zero-padded to a multiple of nr columns.
type packedLayer struct {
	kernel  *kernel
	in, out int
	panels  int
	w       []float32 // panels * in * nr
	bias    []float32 // panels * nr
	act     backend.Activation
}

func packLayer(k *kernel, l backend.Layer) packedLayer {
	nr := k.nr
	panels := ceilDiv(l.Out, nr)
	p := packedLayer{
		kernel: k,
		in:     l.In,
		out:    l.Out,
		panels: panels,
		w:      make([]float32, panels*l.In*nr),
		bias:   make([]float32, panels*nr),
		act:    l.Activation,
	}
	copy(p.bias, l.B)
	for k := 0; k < l.In; k++ {
		row := l.W[k*l.Out : (k+1)*l.Out]
		for j, v := range row {
			panel, col := j/nr, j%nr
			p.w[(panel*l.In+k)*nr+col] = v
		}
	}
	return p
}

// panel returns rows [k0, k1) of panel p.
func (l *packedLayer) panel(p, k0, k1 int) []float32 {
	nr := l.kernel.nr
	base := p * l.in * nr
	return l.w[base+k0*nr : base+k1*nr]
}
