package router

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is how a pool picks one of its endpoints.
type Policy string

// Policies.
const (
	// LeastRequest compares two endpoints drawn at random (power of two
	// choices) and takes the one with the lower cost: requests outstanding
	// from this router plus rows queued at the pod (its
	// inference_queue_depth), plus one, times the pod's recent response
	// time (latency.go).
	LeastRequest Policy = "least-request"
	// RoundRobin takes the endpoints in turn, ignoring their load.
	RoundRobin Policy = "round-robin"
)

// Endpoint is one ready pod address of a backend.
type Endpoint struct {
	Addr string
	// outstanding counts this router's requests in flight to it.
	outstanding atomic.Int64
	// queue is the pod's latest scraped inference_queue_depth, 0 if unknown.
	queue atomic.Int64
	// latency is the pod's decaying peak response time.
	latency latency
}

// Outstanding is the number of requests in flight to the endpoint.
func (e *Endpoint) Outstanding() int64 { return e.outstanding.Load() }

func (e *Endpoint) load() int64 { return e.outstanding.Load() + e.queue.Load() }

// Pool is a backend's ready endpoints. Reads are lock-free: Set publishes a
// new slice, so an endpoint removed from it gets no new request at once,
// while requests already holding it finish.
type Pool struct {
	name   string
	policy Policy
	eps    atomic.Pointer[[]*Endpoint]
	rr     atomic.Uint64

	mu       sync.Mutex // serialises Set
	onChange func()
}

// NewPool returns an empty pool.
func NewPool(name string, policy Policy) *Pool {
	p := &Pool{name: name, policy: policy}
	p.eps.Store(&[]*Endpoint{})
	return p
}

// Endpoints is the current ready set.
func (p *Pool) Endpoints() []*Endpoint { return *p.eps.Load() }

// Set replaces the ready addresses. Endpoints that stay keep their
// counters.
func (p *Pool) Set(addrs []string) {
	p.mu.Lock()
	old := *p.eps.Load()
	byAddr := make(map[string]*Endpoint, len(old))
	for _, e := range old {
		byAddr[e.Addr] = e
	}
	addrs = slices.Compact(slices.Sorted(slices.Values(addrs)))
	next := make([]*Endpoint, 0, len(addrs))
	changed := len(addrs) != len(old)
	for _, a := range addrs {
		e, ok := byAddr[a]
		if !ok {
			e = &Endpoint{Addr: a}
			changed = true
		}
		next = append(next, e)
	}
	p.eps.Store(&next)
	onChange := p.onChange
	p.mu.Unlock()
	if changed && onChange != nil {
		onChange()
	}
}

// pick chooses an endpoint not in tried, nil if none is left.
func (p *Pool) pick(tried []*Endpoint) *Endpoint {
	eps := *p.eps.Load()
	if len(tried) > 0 {
		eps = slices.DeleteFunc(slices.Clone(eps), func(e *Endpoint) bool { return slices.Contains(tried, e) })
	}
	switch len(eps) {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	if p.policy == RoundRobin {
		return eps[(p.rr.Add(1)-1)%uint64(len(eps))]
	}
	i := rand.IntN(len(eps))
	j := rand.IntN(len(eps) - 1)
	if j >= i {
		j++
	}
	a, b := eps[i], eps[j]
	if less(b, a, time.Now()) {
		return b
	}
	return a
}

// less says whether a costs less than b: by load times response time where
// both have answered before, else by load alone (a pod not yet measured is
// compared as if it were as fast as the other).
func less(a, b *Endpoint, now time.Time) bool {
	la, lb := a.latency.at(now), b.latency.at(now)
	if la == 0 || lb == 0 {
		return a.load() < b.load()
	}
	return float64(a.load()+1)*la < float64(b.load()+1)*lb
}
