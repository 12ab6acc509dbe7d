package main

import (
	"math"
	"math/rand/v2"
)

// mlp is a small float64 multilayer perceptron with ReLU hidden layers,
// trained with Adam on mean squared error.
type mlp struct {
	layers []*dense
}

type dense struct {
	in, out int
	w, b    []float64 // w is [in, out] row-major
	// Adam moments.
	mw, vw, mb, vb []float64
}

func newMLP(rng *rand.Rand, widths []int) *mlp {
	n := &mlp{}
	for i := 1; i < len(widths); i++ {
		in, out := widths[i-1], widths[i]
		l := &dense{in: in, out: out, w: make([]float64, in*out), b: make([]float64, out),
			mw: make([]float64, in*out), vw: make([]float64, in*out), mb: make([]float64, out), vb: make([]float64, out)}
		scale := math.Sqrt(2 / float64(in)) // He initialisation for ReLU
		for j := range l.w {
			l.w[j] = rng.NormFloat64() * scale
		}
		n.layers = append(n.layers, l)
	}
	return n
}

// forward returns the output for one row.
func (n *mlp) forward(x []float64) []float64 {
	acts := n.activations(x)
	return acts[len(acts)-1]
}

// activations returns every layer's output (after ReLU for hidden layers),
// the input first.
func (n *mlp) activations(x []float64) [][]float64 {
	acts := [][]float64{x}
	for li, l := range n.layers {
		out := make([]float64, l.out)
		copy(out, l.b)
		for i, v := range acts[len(acts)-1] {
			row := l.w[i*l.out : (i+1)*l.out]
			for j := range out {
				out[j] += v * row[j]
			}
		}
		if li < len(n.layers)-1 {
			for j := range out {
				out[j] = math.Max(0, out[j])
			}
		}
		acts = append(acts, out)
	}
	return acts
}

// train runs mini-batch Adam over shuffled epochs.
func (n *mlp) train(rng *rand.Rand, x [][]float64, y []float64, epochs, batch int, lr float64) {
	const beta1, beta2 = 0.9, 0.999
	gw := make([][]float64, len(n.layers))
	gb := make([][]float64, len(n.layers))
	for i, l := range n.layers {
		gw[i], gb[i] = make([]float64, len(l.w)), make([]float64, len(l.b))
	}
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	step := 0
	for range epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < len(order); start += batch {
			end := min(start+batch, len(order))
			for i := range gw {
				clear(gw[i])
				clear(gb[i])
			}
			for _, idx := range order[start:end] {
				n.backprop(x[idx], y[idx], gw, gb)
			}
			step++
			scale := 1 / float64(end-start)
			c1, c2 := 1-math.Pow(beta1, float64(step)), 1-math.Pow(beta2, float64(step))
			for li, l := range n.layers {
				adam(l.w, gw[li], l.mw, l.vw, scale, lr, c1, c2)
				adam(l.b, gb[li], l.mb, l.vb, scale, lr, c1, c2)
			}
		}
	}
}

func adam(p, g, m, v []float64, scale, lr, c1, c2 float64) {
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	for i := range p {
		gi := g[i] * scale
		m[i] = beta1*m[i] + (1-beta1)*gi
		v[i] = beta2*v[i] + (1-beta2)*gi*gi
		p[i] -= lr * (m[i] / c1) / (math.Sqrt(v[i]/c2) + eps)
	}
}

// backprop adds one row's gradient of the squared error to gw and gb.
func (n *mlp) backprop(x []float64, y float64, gw, gb [][]float64) {
	acts := n.activations(x)
	out := acts[len(acts)-1]
	delta := []float64{out[0] - y}
	for li := len(n.layers) - 1; li >= 0; li-- {
		l := n.layers[li]
		in := acts[li]
		for i, v := range in {
			row := gw[li][i*l.out : (i+1)*l.out]
			for j, d := range delta {
				row[j] += v * d
			}
		}
		for j, d := range delta {
			gb[li][j] += d
		}
		if li == 0 {
			break
		}
		prev := make([]float64, l.in)
		for i := range prev {
			if in[i] <= 0 { // ReLU derivative
				continue
			}
			row := l.w[i*l.out : (i+1)*l.out]
			s := 0.0
			for j, d := range delta {
				s += row[j] * d
			}
			prev[i] = s
		}
		delta = prev
	}
}

// fold makes the network take raw features and give raw prices: input
// standardisation goes into the first layer, output scaling into the last.
func (n *mlp) fold(norm normalizer) {
	first := n.layers[0]
	for i := range first.in {
		for j := range first.out {
			w := first.w[i*first.out+j] / norm.std[i]
			first.w[i*first.out+j] = w
			first.b[j] -= norm.mean[i] * w
		}
	}
	last := n.layers[len(n.layers)-1]
	for i := range last.w {
		last.w[i] *= norm.yStd
	}
	for j := range last.b {
		last.b[j] = last.b[j]*norm.yStd + norm.yMean
	}
}
