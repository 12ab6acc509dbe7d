package cost

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Ledger accounts GPU time from the snapshots the metrics adapter feeds it.
// It is safe for concurrent use.
type Ledger struct {
	cfg config

	mu   sync.Mutex
	last time.Time // time of the newest snapshot
	// first is the time of the first snapshot.
	first time.Time
	pods  map[string]*podState
	// nodes by name.
	nodes map[string]*nodeState
	// observed is the time covered by snapshots at most MaxGap apart.
	observed float64
	hist     *history
}

// podState is what the Ledger knows about one pod.
type podState struct {
	key  Key
	name string
	// gpus is the pod's allocation.
	gpus float64
	// accountedTo is how far its allocation has been accounted.
	accountedTo time.Time
	// lastSeen is the newest snapshot that carried it.
	lastSeen time.Time
	// ended: End was reached; nothing more is accounted.
	ended bool
	// The values of the last observation, for the trapezoid rule.
	used, rps           float64
	usedKnown, rpsKnown bool
	// acc is the pod's counters since this Ledger first saw it (its
	// allocation from Start).
	acc Accum
}

// nodeState is what the Ledger knows about one node.
type nodeState struct {
	key         NodeKey
	gpus        int
	perGPU      []int64
	lastSeen    time.Time
	unallocated float64
}

// NewLedger returns an empty Ledger.
func NewLedger(opts ...Option) (*Ledger, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("cost ledger options: %w", err)
	}
	return &Ledger{
		cfg:   cfg,
		pods:  map[string]*podState{},
		nodes: map[string]*nodeState{},
		hist:  newHistory(cfg.retention),
	}, nil
}

// Observe accounts a snapshot. Snapshots must come in time order: one not
// after the previous is an error and changes nothing. Invalid pods or nodes
// are left out and reported in the error; the rest is accounted.
func (l *Ledger) Observe(s Snapshot) error {
	if s.Time.IsZero() {
		return errors.New("cost snapshot without a time: ignored")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && !s.Time.After(l.last) {
		return fmt.Errorf("cost snapshot at %s is not after the previous one at %s: ignored",
			s.Time.Format(time.RFC3339Nano), l.last.Format(time.RFC3339Nano))
	}
	prev, now := l.last, s.Time
	contiguous := !prev.IsZero() && now.Sub(prev) <= l.cfg.maxGap
	l.hist.advance(now)

	var errs []error
	// held is the GPU-seconds pods held per node within (prev, now].
	held := map[string]float64{}
	seen := map[string]bool{}
	for i := range s.Pods {
		p := &s.Pods[i]
		if err := validatePod(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if p.AllocatedGPUs == 0 {
			continue
		}
		id := podID(p)
		if seen[id] {
			errs = append(errs, fmt.Errorf("pod %s/%s (uid %q) appears twice in the cost snapshot: the second is ignored", p.Namespace, p.Name, p.UID))
			continue
		}
		seen[id] = true
		st := l.pods[id]
		if st == nil {
			start := p.Start
			if start.IsZero() || start.After(now) {
				start = now
			}
			st = &podState{accountedTo: start}
			l.pods[id] = st
		}
		l.observePod(st, p, prev, now, contiguous, held)
	}

	perGPU := derivePerGPU(s.Pods)
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Node == "" || n.GPUs < 0 || n.GPUs > maxGPUsPerNode {
			errs = append(errs, fmt.Errorf("node %q with %d GPUs in the cost snapshot: ignored", n.Node, n.GPUs))
			continue
		}
		l.observeNode(n, perGPU[n.Node], prev, now, contiguous, held[n.Node])
	}

	if contiguous {
		l.observed += now.Sub(prev).Seconds()
		l.hist.addObserved(prev, now)
	}
	if l.first.IsZero() {
		l.first = now
	}
	l.last = now
	l.forget(now)
	return errors.Join(errs...)
}

// maxGPUsPerNode bounds a node's GPU count (and so the per-GPU series).
const maxGPUsPerNode = 64

func validatePod(p *PodUsage) error {
	bad := func(what string) error {
		return fmt.Errorf("pod %s/%s in the cost snapshot: %s: ignored", p.Namespace, p.Name, what)
	}
	switch {
	case p.Namespace == "" || p.Name == "":
		return bad("no namespace or name")
	case !finite(p.AllocatedGPUs) || p.AllocatedGPUs < 0 || p.AllocatedGPUs > maxGPUsPerNode:
		return bad(fmt.Sprintf("allocated GPUs %v out of range", p.AllocatedGPUs))
	case p.UsedKnown && (!finite(p.UsedGPUs) || p.UsedGPUs < 0):
		return bad(fmt.Sprintf("used GPUs %v out of range", p.UsedGPUs))
	case p.RPSKnown && (!finite(p.RequestsPerSecond) || p.RequestsPerSecond < 0):
		return bad(fmt.Sprintf("requests per second %v out of range", p.RequestsPerSecond))
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func podID(p *PodUsage) string {
	if p.UID != "" {
		return p.UID
	}
	return p.Namespace + "/" + p.Name
}

func keyOf(p *PodUsage) Key {
	kind, workload := p.WorkloadKind, p.Workload
	if kind == "" || workload == "" {
		kind, workload = KindPod, p.Name
	}
	return Key{Namespace: p.Namespace, WorkloadKind: kind, Workload: workload, Node: p.Node, Model: p.Model, Spot: p.Spot}
}

// observePod accounts pod p, seen at now, the previous snapshot being at
// prev. held collects the GPU-seconds it held per node within (prev, now].
func (l *Ledger) observePod(st *podState, p *PodUsage, prev, now time.Time, contiguous bool, held map[string]float64) {
	seenBefore := st.lastSeen.Equal(prev) && !prev.IsZero()
	st.key, st.name, st.gpus = keyOf(p), p.Name, p.AllocatedGPUs
	st.lastSeen = now
	if st.ended {
		return
	}
	end := now
	if !p.End.IsZero() && !p.End.After(now) {
		end, st.ended = p.End, true
	}
	// Allocation: from where it was accounted to the end, whatever the
	// sampling (the pod held its GPUs all along).
	if end.After(st.accountedTo) {
		d := end.Sub(st.accountedTo).Seconds()
		st.acc.AllocatedGPUSeconds += st.gpus * d
		st.acc.PodSeconds += d
		l.hist.addAllocated(st.key, st.accountedTo, end, st.gpus)
		if contiguous {
			held[st.key.Node] += st.gpus * overlap(st.accountedTo, end, prev, now)
		}
		st.accountedTo = end
	}
	// Use and requests: trapezoid between this observation and the
	// previous one, when both know the value and the gap is short.
	if contiguous && seenBefore && end.After(prev) {
		dt := end.Sub(prev).Seconds()
		if st.usedKnown && p.UsedKnown {
			u0, u1 := st.used, p.UsedGPUs
			st.acc.UsedGPUSeconds += (u0 + u1) / 2 * dt
			st.acc.AllocatedObservedGPUSeconds += st.gpus * dt
			l.hist.addUsed(st.key, prev, end, u0, u1, st.gpus)
		}
		if st.rpsKnown && p.RPSKnown {
			r0, r1 := st.rps, p.RequestsPerSecond
			st.acc.Requests += (r0 + r1) / 2 * dt
			st.acc.RequestsObservedSeconds += dt
			l.hist.addRequests(st.key, prev, end, r0, r1)
		}
	}
	st.used, st.usedKnown = p.UsedGPUs, p.UsedKnown
	st.rps, st.rpsKnown = p.RequestsPerSecond, p.RPSKnown
}

// overlap is the length in seconds of [a, b) within [c, d).
func overlap(a, b, c, d time.Time) float64 {
	if c.After(a) {
		a = c
	}
	if d.Before(b) {
		b = d
	}
	if !b.After(a) {
		return 0
	}
	return b.Sub(a).Seconds()
}

// observeNode accounts node n's unallocated GPU time over (prev, now], its
// pods having held heldGPUSeconds of it.
func (l *Ledger) observeNode(n *NodeGPUs, fromPods map[int]int64, prev, now time.Time, contiguous bool, heldGPUSeconds float64) {
	ns := l.nodes[n.Node]
	if ns == nil {
		ns = &nodeState{}
		l.nodes[n.Node] = ns
	}
	seenBefore := ns.lastSeen.Equal(prev) && !prev.IsZero()
	ns.key = NodeKey{Node: n.Node, Model: n.Model, Spot: n.Spot}
	ns.gpus = n.GPUs
	if len(n.PerGPUAllocatedMilli) == n.GPUs {
		ns.perGPU = append(ns.perGPU[:0], n.PerGPUAllocatedMilli...)
	} else {
		ns.perGPU = ns.perGPU[:0]
		for i := range n.GPUs {
			ns.perGPU = append(ns.perGPU, fromPods[i])
		}
	}
	ns.lastSeen = now
	if !contiguous || !seenBefore {
		return
	}
	idle := max(0, float64(n.GPUs)*now.Sub(prev).Seconds()-heldGPUSeconds)
	ns.unallocated += idle
	l.hist.addIdle(ns.key, prev, now, idle)
}

// derivePerGPU sums, per node and GPU index, the milli-GPUs of the running
// pods that name their GPUs.
func derivePerGPU(pods []PodUsage) map[string]map[int]int64 {
	out := map[string]map[int]int64{}
	for i := range pods {
		p := &pods[i]
		if len(p.GPUIndices) == 0 || !p.End.IsZero() || validatePod(p) != nil {
			continue
		}
		m := out[p.Node]
		if m == nil {
			m = map[int]int64{}
			out[p.Node] = m
		}
		share := int64(math.Round(p.AllocatedGPUs * 1000 / float64(len(p.GPUIndices))))
		for _, g := range p.GPUIndices {
			m[g] += share
		}
	}
	return out
}

// forget drops pods and nodes not seen for the dead pod TTL.
func (l *Ledger) forget(now time.Time) {
	cutoff := now.Add(-l.cfg.deadPodTTL)
	for id, st := range l.pods {
		if st.lastSeen.Before(cutoff) {
			delete(l.pods, id)
		}
	}
	for name, ns := range l.nodes {
		if ns.lastSeen.Before(cutoff) {
			delete(l.nodes, name)
		}
	}
}
