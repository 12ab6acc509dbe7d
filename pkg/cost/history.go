package cost

import "time"

// history keeps accounted time in per-minute buckets, in a ring that holds
// the last retention of minutes plus the current one. Keys are interned:
// a bucket holds, per active key, six float32 sums (about 35 bytes with
// the map's overhead), so 1,000 (workload, node) keys active all day take
// about 50 MB. Per-minute values are small (at most 64 GPUs x 60 s), so
// float32 keeps them to 7 significant digits; sums over minutes are float64.
type history struct {
	slots []bucket
	// newest is the newest minute written or advanced to.
	newest int64
	keys   interner[Key]
	nodes  interner[NodeKey]
}

type bucket struct {
	minute   int64
	valid    bool
	acc      map[uint32]*accum32
	idle     map[uint32]float32
	observed float64
}

// accum32 is one minute of an Accum: allocated, used, allocated observed,
// pod-seconds, requests, requests observed.
type accum32 [6]float32

func (a *accum32) accum() Accum {
	return Accum{
		AllocatedGPUSeconds: float64(a[0]), UsedGPUSeconds: float64(a[1]), AllocatedObservedGPUSeconds: float64(a[2]),
		PodSeconds: float64(a[3]), Requests: float64(a[4]), RequestsObservedSeconds: float64(a[5]),
	}
}

// interner gives keys small ids and frees the ids of keys that no bucket
// of the ring holds any more.
type interner[K comparable] struct {
	ids  map[K]uint32
	keys []K
	// last is the newest minute written per id; -1 when free.
	last []int64
	free []uint32
}

func (in *interner[K]) id(k K, minute int64) uint32 {
	if in.ids == nil {
		in.ids = map[K]uint32{}
	}
	id, ok := in.ids[k]
	if !ok {
		if n := len(in.free); n > 0 {
			id, in.free = in.free[n-1], in.free[:n-1]
			in.keys[id], in.last[id] = k, minute
		} else {
			id = uint32(len(in.keys))
			in.keys, in.last = append(in.keys, k), append(in.last, minute)
		}
		in.ids[k] = id
	}
	in.last[id] = max(in.last[id], minute)
	return id
}

// sweep frees the ids last written before minute oldest.
func (in *interner[K]) sweep(oldest int64) {
	for id, last := range in.last {
		if last >= 0 && last < oldest {
			delete(in.ids, in.keys[id])
			var zero K
			in.keys[id], in.last[id] = zero, -1
			in.free = append(in.free, uint32(id))
		}
	}
}

func newHistory(retention time.Duration) *history {
	// One more slot than the retention: the current minute is partial.
	n := int((retention+time.Minute-1)/time.Minute) + 1
	return &history{slots: make([]bucket, n)}
}

// minuteOf is the Unix minute holding t.
func minuteOf(t time.Time) int64 {
	ns := t.UnixNano()
	m := ns / int64(time.Minute)
	if ns%int64(time.Minute) < 0 {
		m--
	}
	return m
}

func minuteStart(m int64) time.Time { return time.Unix(0, m*int64(time.Minute)).UTC() }

// oldest is the oldest minute the ring holds.
func (h *history) oldest() int64 { return h.newest - int64(len(h.slots)) + 1 }

// advance moves the ring's newest minute to t's, freeing the keys that
// fell out of it.
func (h *history) advance(t time.Time) {
	if m := minuteOf(t); m > h.newest {
		h.newest = m
		h.keys.sweep(h.oldest())
		h.nodes.sweep(h.oldest())
	}
}

// slot returns minute m's bucket, or nil when m is outside the ring.
func (h *history) slot(m int64) *bucket {
	if m < h.oldest() || m > h.newest {
		return nil
	}
	n := int64(len(h.slots))
	b := &h.slots[((m%n)+n)%n]
	if !b.valid || b.minute != m {
		*b = bucket{minute: m, valid: true}
	}
	return b
}

// get returns minute m's bucket if it holds data, without creating it.
func (h *history) get(m int64) *bucket {
	if m < h.oldest() || m > h.newest {
		return nil
	}
	n := int64(len(h.slots))
	b := &h.slots[((m%n)+n)%n]
	if !b.valid || b.minute != m {
		return nil
	}
	return b
}

func (h *history) accum(b *bucket, k Key) *accum32 {
	if b.acc == nil {
		b.acc = map[uint32]*accum32{}
	}
	id := h.keys.id(k, b.minute)
	a := b.acc[id]
	if a == nil {
		a = &accum32{}
		b.acc[id] = a
	}
	return a
}

// eachMinute calls fn for the pieces of [a, b) cut at minute boundaries
// that the ring holds.
func (h *history) eachMinute(a, b time.Time, fn func(bk *bucket, x, y time.Time)) {
	if !b.After(a) {
		return
	}
	first := max(minuteOf(a), h.oldest())
	last := minuteOf(b)
	if !b.After(minuteStart(last)) {
		last-- // b on a boundary: the piece ends in the previous minute
	}
	for m := first; m <= last && m <= h.newest; m++ {
		x, y := minuteStart(m), minuteStart(m+1)
		if a.After(x) {
			x = a
		}
		if b.Before(y) {
			y = b
		}
		if !y.After(x) {
			continue
		}
		if bk := h.slot(m); bk != nil {
			fn(bk, x, y)
		}
	}
}

// addAllocated records k holding gpus GPUs over [a, b).
func (h *history) addAllocated(k Key, a, b time.Time, gpus float64) {
	h.eachMinute(a, b, func(bk *bucket, x, y time.Time) {
		d := y.Sub(x).Seconds()
		acc := h.accum(bk, k)
		acc[0] += float32(gpus * d)
		acc[3] += float32(d)
	})
}

// lerp is the linear interpolation at t of v0 at a and v1 at b.
func lerp(v0, v1 float64, a, b, t time.Time) float64 {
	return v0 + (v1-v0)*t.Sub(a).Seconds()/b.Sub(a).Seconds()
}

// addUsed records, over [a, b), use going linearly from u0 to u1 (the
// trapezoid rule) on gpus allocated GPUs.
func (h *history) addUsed(k Key, a, b time.Time, u0, u1, gpus float64) {
	h.eachMinute(a, b, func(bk *bucket, x, y time.Time) {
		d := y.Sub(x).Seconds()
		acc := h.accum(bk, k)
		acc[1] += float32((lerp(u0, u1, a, b, x) + lerp(u0, u1, a, b, y)) / 2 * d)
		acc[2] += float32(gpus * d)
	})
}

// addRequests records, over [a, b), a request rate going linearly from r0
// to r1.
func (h *history) addRequests(k Key, a, b time.Time, r0, r1 float64) {
	h.eachMinute(a, b, func(bk *bucket, x, y time.Time) {
		d := y.Sub(x).Seconds()
		acc := h.accum(bk, k)
		acc[4] += float32((lerp(r0, r1, a, b, x) + lerp(r0, r1, a, b, y)) / 2 * d)
		acc[5] += float32(d)
	})
}

// addIdle spreads gpuSeconds of unallocated GPU time of n evenly over
// [a, b).
func (h *history) addIdle(n NodeKey, a, b time.Time, gpuSeconds float64) {
	total := b.Sub(a).Seconds()
	h.eachMinute(a, b, func(bk *bucket, x, y time.Time) {
		if bk.idle == nil {
			bk.idle = map[uint32]float32{}
		}
		bk.idle[h.nodes.id(n, bk.minute)] += float32(gpuSeconds * y.Sub(x).Seconds() / total)
	})
}

// addObserved records [a, b) as observed.
func (h *history) addObserved(a, b time.Time) {
	h.eachMinute(a, b, func(bk *bucket, x, y time.Time) {
		bk.observed += y.Sub(x).Seconds()
	})
}
