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
			r.l.kernel.tile(r, t)
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
		r.l.kernel.tile(r, t)
	}
}

// bounds returns the rows [r0, r1) and panels [p0, p1) of tile t.
func (r *layerRun) bounds(t int) (r0, r1, p0, p1 int) {
	p := r.plan
	r0 = (t / p.colTiles) * p.rowsPerTile
	r1 = min(r.batch, r0+p.rowsPerTile)
	p0 = (t % p.colTiles) * p.panelsPerTile
	p1 = min(r.l.panels, p0+p.panelsPerTile)
	return r0, r1, p0, p1
}
