package cpu

import (
	"sync"
	"sync/atomic"
)

// layerRun is one layer of one Forward call: out = act(in · W + B) for
// batch rows, cut into tiles by plan.
type layerRun struct {
	l       *packedLayer
	in, out []float32 // batch x l.in and batch x l.out, row-major
	batch   int
	plan    plan

	next atomic.Int64 // the next tile to take, when parallel
	wg   sync.WaitGroup
}

// run computes every tile, on plan.workers goroutines (the caller's
// included), and returns when all are done. Tiles are handed out through
// an atomic counter, so a goroutine that finishes early takes more.
func (r *layerRun) run() {
	if r.plan.workers <= 1 {
		for t := range r.plan.tiles() {
			r.tile(t)
		}
		return
	}
	r.next.Store(0)
	r.wg.Add(r.plan.workers - 1)
	for range r.plan.workers - 1 {
		go func() {
			defer r.wg.Done()
			r.work()
		}()
	}
	r.work()
	r.wg.Wait()
}

func (r *layerRun) work() {
	for {
		t := int(r.next.Add(1)) - 1
		if t >= r.plan.tiles() {
			return
		}
		r.tile(t)
	}
}

// tile computes tile t. It walks the shared dimension in blocks of kc; for
// each block it runs every panel of the tile against every row pair, so the
// panel's block of weights is read from L1 after the first pair. The first
// block starts the sums from the bias; the last applies the activation as it
// stores them.
func (r *layerRun) tile(t int) {
	l, p := r.l, r.plan
	r0 := (t / p.colTiles) * p.rowsPerTile
	r1 := min(r.batch, r0+p.rowsPerTile)
	p0 := (t % p.colTiles) * p.panelsPerTile
	p1 := min(l.panels, p0+p.panelsPerTile)
	in, out := l.in, l.out

	for k0 := 0; k0 < in; k0 += p.kc {
		k1 := min(in, k0+p.kc)
		first, last := k0 == 0, k1 == in
		for pi := p0; pi < p1; pi++ {
			w := l.panel(pi, k0, k1)
			c0 := pi * nr
			c1 := min(out, c0+nr)
			i := r0
			for ; i+1 < r1; i += mr {
				d0 := r.out[i*out+c0 : i*out+c1]
				d1 := r.out[(i+1)*out+c0 : (i+1)*out+c1]
				var c [mr * nr]float32
				l.begin(c[:nr], d0, pi, first)
				l.begin(c[nr:], d1, pi, first)
				kernel2x4(r.in[i*in+k0:i*in+k1], r.in[(i+1)*in+k0:(i+1)*in+k1], w, &c)
				l.end(d0, c[:nr], last)
				l.end(d1, c[nr:], last)
			}
			if i < r1 {
				d := r.out[i*out+c0 : i*out+c1]
				var c [nr]float32
				l.begin(c[:], d, pi, first)
				kernel1x4(r.in[i*in+k0:i*in+k1], w, &c)
				l.end(d, c[:], last)
			}
		}
	}
}

// begin loads one row of a micro-tile of panel p: the bias on the first
// block of the shared dimension, the partial sums already in dst after it.
func (l *packedLayer) begin(c, dst []float32, p int, first bool) {
	if first {
		copy(c, l.bias[p*nr:(p+1)*nr])
		return
	}
	copy(c, dst)
}

// end stores one row of a micro-tile into dst (the row's columns that exist:
// the padding of the last panel is dropped), applying the activation on the
// last block of the shared dimension.
func (l *packedLayer) end(dst, c []float32, last bool) {
	c = c[:len(dst)]
	if last {
		l.act.ApplyTo(c)
	}
	copy(dst, c)
}
