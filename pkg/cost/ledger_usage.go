package cost

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Usage returns the GPU time accounted over [from, to), widened to whole
// minutes (the history's resolution), clipped to the history held and to
// the newest snapshot. Notes in the result say what was clipped.
func (l *Ledger) Usage(from, to time.Time) (Usage, error) {
	if !to.After(from) {
		return Usage{}, fmt.Errorf("range end %s is not after its start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fm, tm := minuteOf(from), minuteOf(to)
	if minuteStart(tm).Before(to) {
		tm++
	}
	u := Usage{Entries: []Entry{}, Nodes: []NodeIdle{}}
	if l.last.IsZero() {
		u.From, u.To = minuteStart(fm), minuteStart(tm)
		u.Notes = append(u.Notes, "no snapshots accounted yet")
		return u, nil
	}
	// Nothing is known after the newest snapshot.
	newest := minuteOf(l.last)
	if minuteStart(newest).Before(l.last) {
		newest++
	}
	if tm > newest {
		tm = max(newest, fm+1)
	}
	if oldest := l.hist.oldest(); fm < oldest {
		u.Notes = append(u.Notes, fmt.Sprintf("history is kept for %v: the range starts at %s instead",
			l.cfg.retention, minuteStart(oldest).Format(time.RFC3339)))
		fm = min(oldest, tm-1)
	}
	u.From, u.To = minuteStart(fm), minuteStart(tm)
	if l.first.After(u.From) {
		u.Notes = append(u.Notes, fmt.Sprintf("accounting started at %s: use and idle time before it are unknown (allocation is derived from pod start times)",
			l.first.Format(time.RFC3339)))
	}

	acc := map[Key]*Accum{}
	idle := map[NodeKey]float64{}
	perMinute := map[WorkloadRef][]float64{}
	for m := fm; m < tm; m++ {
		b := l.hist.get(m)
		if b == nil {
			continue
		}
		u.ObservedSeconds += b.observed
		byWorkload := map[WorkloadRef]*Accum{}
		for id, a32 := range b.acc {
			k, a := l.hist.keys.keys[id], a32.accum()
			if acc[k] == nil {
				acc[k] = &Accum{}
			}
			acc[k].add(a)
			w := k.WorkloadRef()
			if byWorkload[w] == nil {
				byWorkload[w] = &Accum{}
			}
			byWorkload[w].add(a)
		}
		for w, a := range byWorkload {
			if v, ok := usedPerReplica(*a); ok {
				perMinute[w] = append(perMinute[w], v)
			}
		}
		for id, s := range b.idle {
			idle[l.hist.nodes.keys[id]] += float64(s)
		}
	}
	for k, a := range acc {
		u.Entries = append(u.Entries, Entry{Key: k, Accum: *a})
	}
	for n, s := range idle {
		u.Nodes = append(u.Nodes, NodeIdle{NodeKey: n, UnallocatedGPUSeconds: s})
	}
	for w, vs := range perMinute {
		u.Peaks = append(u.Peaks, UsePeak{WorkloadRef: w, P95UsedGPUsPerReplica: percentile(vs, 0.95)})
	}
	if d := l.last.Sub(u.To); d.Abs() <= l.cfg.maxGap+time.Minute {
		u.GPUsAt = l.last
		for _, ns := range l.nodes {
			if ns.lastSeen.Equal(l.last) {
				u.GPUs = append(u.GPUs, NodeAllocation{NodeKey: ns.key, PerGPUAllocatedMilli: slices.Clone(ns.perGPU)})
			}
		}
	}
	sortUsage(&u)
	return u, nil
}

// usedPerReplica is the mean GPU use per replica of a: busy GPUs over the
// observed allocation, times GPUs per replica.
func usedPerReplica(a Accum) (float64, bool) {
	if a.AllocatedObservedGPUSeconds <= 0 || a.PodSeconds <= 0 || a.AllocatedGPUSeconds <= 0 {
		return 0, false
	}
	return a.UsedGPUSeconds / a.AllocatedObservedGPUSeconds * a.AllocatedGPUSeconds / a.PodSeconds, true
}

// percentile is the nearest-rank q-quantile of vs (which it sorts).
func percentile(vs []float64, q float64) float64 {
	slices.Sort(vs)
	i := int(math.Ceil(q*float64(len(vs)))) - 1
	return vs[max(0, min(i, len(vs)-1))]
}

// Report builds the report of [from, to) grouped by by, priced with the
// Ledger's price table (WithPrices).
func (l *Ledger) Report(from, to time.Time, by GroupBy) (Report, error) {
	if _, err := ParseGroupBy(string(by)); err != nil {
		return Report{}, err
	}
	u, err := l.Usage(from, to)
	if err != nil {
		return Report{}, err
	}
	return BuildReport(u, ReportOptions{By: by, Prices: l.cfg.prices, Recommend: l.cfg.recommend})
}
