package scrape

import "time"

// Value is the answer to a query.
type Value struct {
	Value float64
	// Timestamp is the time of the newest sample used: the target's latest
	// scrape.
	Timestamp time.Time
	// Window is the time actually covered, newest minus oldest sample used;
	// zero for Gauge.
	Window time.Duration
}

// Gauge returns the sum, at the target's latest scrape, of the series of
// metric whose labels match every pair of match. It has no value for an
// unknown or stale target, or when no series matches.
func (s *Store) Gauge(key, metric string, match map[string]string) (Value, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	td, ok := s.fresh(key)
	if !ok {
		return Value{}, false
	}
	var sum float64
	found := false
	for _, sr := range td.byMetric[metric] {
		if last := sr.newest(); last.t == td.lastSuccess && matches(sr, td.target.Labels, match) {
			sum += last.v
			found = true
		}
	}
	if !found {
		return Value{}, false
	}
	return Value{Value: sum, Timestamp: time.Unix(0, td.lastSuccess)}, true
}

// Rate returns the per-second increase of counter metric, summed over the
// series whose labels match, from the samples inside the window ending at
// the target's latest scrape (window <= 0 means the configured rate
// window). Each series contributes its increase divided by the time between
// its oldest and newest sample in the window; a decrease is a counter reset,
// so the increase across it is the new value. A series needs two samples in
// the window and must be present in the latest scrape; gauges never match.
// There is no value when no series qualifies or the target is stale.
func (s *Store) Rate(key, metric string, match map[string]string, window time.Duration) (Value, bool) {
	if window <= 0 {
		window = s.window
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	td, ok := s.fresh(key)
	if !ok {
		return Value{}, false
	}
	start := td.lastSuccess - window.Nanoseconds()
	var sum float64
	oldest := td.lastSuccess
	found := false
	for _, sr := range td.byMetric[metric] {
		if sr.newest().t != td.lastSuccess || !matches(sr, td.target.Labels, match) {
			continue
		}
		r, first, ok := seriesRate(sr, start)
		if !ok {
			continue
		}
		sum += r
		oldest = min(oldest, first)
		found = true
	}
	if !found {
		return Value{}, false
	}
	return Value{
		Value:     sum,
		Timestamp: time.Unix(0, td.lastSuccess),
		Window:    time.Duration(td.lastSuccess - oldest),
	}, true
}

// seriesRate is the reset-aware per-second increase of sr over its samples
// at or after start, and the time of the first of them.
func seriesRate(sr *series, start int64) (rate float64, first int64, ok bool) {
	i := 0
	for i < sr.n && sr.at(i).t < start {
		i++
	}
	if sr.n-i < 2 {
		return 0, 0, false
	}
	prev := sr.at(i)
	if prev.kind == KindGauge {
		return 0, 0, false
	}
	first = prev.t
	var inc float64
	for j := i + 1; j < sr.n; j++ {
		cur := sr.at(j)
		if cur.kind == KindGauge {
			return 0, 0, false
		}
		if cur.v >= prev.v {
			inc += cur.v - prev.v
		} else {
			inc += cur.v // the counter restarted from zero
		}
		prev = cur
	}
	return inc / time.Duration(prev.t-first).Seconds(), first, true
}

// matches reports whether every pair of match equals the series label of
// that name or, where the series has no such label, the target label.
func matches(sr *series, targetLabels, match map[string]string) bool {
	for name, want := range match {
		got, ok := seriesLabel(sr.labels, name)
		if !ok {
			got, ok = targetLabels[name]
		}
		if !ok || got != want {
			return false
		}
	}
	return true
}

func seriesLabel(ls []labelPair, name string) (string, bool) {
	for _, l := range ls {
		if l.name == name {
			return l.value, true
		}
	}
	return "", false
}
