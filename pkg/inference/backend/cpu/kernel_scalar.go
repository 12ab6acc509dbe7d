package cpu

// Register blocking of the scalar kernel. The micro-kernels keep an
// mr x nr block of the output in local variables for a whole run over the
// shared dimension. Go's amd64 compiler does not vectorise and has 15
// usable float registers; 2 x 4 accumulators plus the 2 input values and 4
// weights of one step fit, while 3 x 4, 4 x 4 and 2 x 6 spill to the stack
// and run at about half the speed (measured on the machine this was tuned
// on).
const (
	scalarMR = 2 // rows of the output per micro-kernel call
	scalarNR = 4 // columns of the output per micro-kernel call, the panel width
)

// kernel2x4 adds x0 · w and x1 · w to c, where x0 and x1 are two input rows
// restricted to the same k range and w is the matching part of one weight
// panel (len(w) == scalarNR*len(x0)). c holds row 0's four columns, then
// row 1's. The main loop is unrolled four steps of k: the compiler
// schedules the additions that feed the loop's next iteration last in the
// loop body, so the products of that final step all wait in registers for
// them; with one step per iteration this spills, with four it does not.
// The loop has no bounds checks: the lengths tested in its condition prove
// every index.
func kernel2x4(x0, x1, w []float32, c *[scalarMR * scalarNR]float32) {
	c00, c01, c02, c03 := c[0], c[1], c[2], c[3]
	c10, c11, c12, c13 := c[4], c[5], c[6], c[7]
	for len(x0) >= 4 && len(x1) >= 4 && len(w) >= 4*scalarNR {
		a, b, p := (*[4]float32)(x0), (*[4]float32)(x1), (*[4 * scalarNR]float32)(w)

		a0, b0 := a[0], b[0]
		c00 += a0 * p[0]
		c01 += a0 * p[1]
		c02 += a0 * p[2]
		c03 += a0 * p[3]
		c10 += b0 * p[0]
		c11 += b0 * p[1]
		c12 += b0 * p[2]
		c13 += b0 * p[3]

		a1, b1 := a[1], b[1]
		c00 += a1 * p[4]
		c01 += a1 * p[5]
		c02 += a1 * p[6]
		c03 += a1 * p[7]
		c10 += b1 * p[4]
		c11 += b1 * p[5]
		c12 += b1 * p[6]
		c13 += b1 * p[7]

		a2, b2 := a[2], b[2]
		c00 += a2 * p[8]
		c01 += a2 * p[9]
		c02 += a2 * p[10]
		c03 += a2 * p[11]
		c10 += b2 * p[8]
		c11 += b2 * p[9]
		c12 += b2 * p[10]
		c13 += b2 * p[11]

		a3, b3 := a[3], b[3]
		c00 += a3 * p[12]
		c01 += a3 * p[13]
		c02 += a3 * p[14]
		c03 += a3 * p[15]
		c10 += b3 * p[12]
		c11 += b3 * p[13]
		c12 += b3 * p[14]
		c13 += b3 * p[15]

		x0, x1, w = x0[4:], x1[4:], w[4*scalarNR:]
	}
	for len(x0) >= 1 && len(x1) >= 1 && len(w) >= scalarNR {
		a0, b0 := x0[0], x1[0]
		c00 += a0 * w[0]
		c01 += a0 * w[1]
		c02 += a0 * w[2]
		c03 += a0 * w[3]
		c10 += b0 * w[0]
		c11 += b0 * w[1]
		c12 += b0 * w[2]
		c13 += b0 * w[3]
		x0, x1, w = x0[1:], x1[1:], w[scalarNR:]
	}
	c[0], c[1], c[2], c[3] = c00, c01, c02, c03
	c[4], c[5], c[6], c[7] = c10, c11, c12, c13
}

// kernel1x4 is kernel2x4 for a single row: the odd row of an odd batch,
// and the whole of a batch of one.
func kernel1x4(x, w []float32, c *[scalarNR]float32) {
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	for len(x) >= 4 && len(w) >= 4*scalarNR {
		a, p := (*[4]float32)(x), (*[4 * scalarNR]float32)(w)
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		c0 += a0 * p[0]
		c1 += a0 * p[1]
		c2 += a0 * p[2]
		c3 += a0 * p[3]
		c0 += a1 * p[4]
		c1 += a1 * p[5]
		c2 += a1 * p[6]
		c3 += a1 * p[7]
		c0 += a2 * p[8]
		c1 += a2 * p[9]
		c2 += a2 * p[10]
		c3 += a2 * p[11]
		c0 += a3 * p[12]
		c1 += a3 * p[13]
		c2 += a3 * p[14]
		c3 += a3 * p[15]
		x, w = x[4:], w[4*scalarNR:]
	}
	for len(x) >= 1 && len(w) >= scalarNR {
		a0 := x[0]
		c0 += a0 * w[0]
		c1 += a0 * w[1]
		c2 += a0 * w[2]
		c3 += a0 * w[3]
		x, w = x[1:], w[scalarNR:]
	}
	c[0], c[1], c[2], c[3] = c0, c1, c2, c3
}

// tileScalar computes tile t with the scalar kernels. It walks the shared
// dimension in blocks of kc; for each block it runs every panel of the
// tile against every row pair, so the panel's block of weights is read
// from L1 after the first pair. The first block starts the sums from the
// bias; the last applies the activation as it stores them.
func (r *layerRun) tileScalar(t int) {
	l, kc := r.l, r.plan.kc
	r0, r1, p0, p1 := r.bounds(t)
	in, out := l.in, l.out

	for k0 := 0; k0 < in; k0 += kc {
		k1 := min(in, k0+kc)
		first, last := k0 == 0, k1 == in
		for pi := p0; pi < p1; pi++ {
			w := l.panel(pi, k0, k1)
			c0 := pi * scalarNR
			c1 := min(out, c0+scalarNR)
			i := r0
			for ; i+1 < r1; i += scalarMR {
				d0 := r.out[i*out+c0 : i*out+c1]
				d1 := r.out[(i+1)*out+c0 : (i+1)*out+c1]
				var c [scalarMR * scalarNR]float32
				l.begin(c[:scalarNR], d0, pi, first)
				l.begin(c[scalarNR:], d1, pi, first)
				kernel2x4(r.in[i*in+k0:i*in+k1], r.in[(i+1)*in+k0:(i+1)*in+k1], w, &c)
				l.end(d0, c[:scalarNR], last)
				l.end(d1, c[scalarNR:], last)
			}
			if i < r1 {
				d := r.out[i*out+c0 : i*out+c1]
				var c [scalarNR]float32
				l.begin(c[:], d, pi, first)
				kernel1x4(r.in[i*in+k0:i*in+k1], w, &c)
				l.end(d, c[:], last)
			}
		}
	}
}

// begin loads one row of a scalar micro-tile of panel p: the bias on the
// first block of the shared dimension, the partial sums already in dst
// after it.
func (l *packedLayer) begin(c, dst []float32, p int, first bool) {
	if first {
		copy(c, l.bias[p*scalarNR:(p+1)*scalarNR])
		return
	}
	copy(c, dst)
}

// end stores one row of a scalar micro-tile into dst (the row's columns
// that exist: the padding of the last panel is dropped), applying the
// activation on the last block of the shared dimension.
func (l *packedLayer) end(dst, c []float32, last bool) {
	c = c[:len(dst)]
	if last {
		l.act.ApplyTo(c)
	}
	copy(dst, c)
}
