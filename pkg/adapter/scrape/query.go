package scrape

import (
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Selector selects series by their labels; labels.Selector implements it.
// A nil Selector selects every series.
type Selector interface {
	Matches(labels.Labels) bool
}

// Value is the answer to a query.
type Value struct {
	Value float64
	// Timestamp is the time of the newest sample used: the target's latest
	// scrape.
	Timestamp time.Time
	// Window is the time actually covered, newest minus oldest sample used;
	// zero for Gauge.
	Window time.Duration
	// Series is how many series were summed (for a mean, divide by it).
	Series int
}

// Gauge returns the sum, at the target's latest scrape, of the series of
// metric whose labels match sel (see matches). It has no value for an
// unknown or stale target, or when no series matches.
func (s *Store) Gauge(key, metric string, sel Selector) (Value, bool) {
	td := s.target(key)
	if td == nil {
		return Value{}, false
	}
	td.mu.RLock()
	defer td.mu.RUnlock()
	if !s.fresh(td) {
		return Value{}, false
	}
	var sum float64
	n := 0
	for _, sr := range td.byMetric[metric] {
		if last := sr.newest(); last.t == td.lastSuccess && matches(sr, td.target.Labels, sel) {
			sum += last.v
			n++
		}
	}
	if n == 0 {
		return Value{}, false
	}
	return Value{Value: sum, Timestamp: time.Unix(0, td.lastSuccess), Series: n}, true
}

// Rate returns the per-second increase of counter metric, summed over the
// series whose labels match, from the samples inside the window ending at
// the target's latest scrape (window <= 0 means the configured rate
// window), extended by a quarter interval for scrapes that started late. Each series contributes its increase divided by the time between
// its oldest and newest sample in the window; a decrease is a counter reset,
// so the increase across it is the new value. A series needs two samples in
// the window and must be present in the latest scrape; gauges never match.
// There is no value when no series qualifies or the target is stale.
func (s *Store) Rate(key, metric string, sel Selector, window time.Duration) (Value, bool) {
	if window <= 0 {
		window = s.window
	}
	td := s.target(key)
	if td == nil {
		return Value{}, false
	}
	td.mu.RLock()
	defer td.mu.RUnlock()
	if !s.fresh(td) {
		return Value{}, false
	}
	// A scrape starts a little after its tick (scheduling delay), so the
	// sample one window before the latest is usually a few milliseconds
	// older than exactly that: allow a quarter interval of slack.
	start := td.lastSuccess - (window + s.slack).Nanoseconds()
	var sum float64
	oldest := td.lastSuccess
	n := 0
	for _, sr := range td.byMetric[metric] {
		if sr.newest().t != td.lastSuccess || !matches(sr, td.target.Labels, sel) {
			continue
		}
		r, first, ok := seriesRate(sr, start)
		if !ok {
			continue
		}
		sum += r
		oldest = min(oldest, first)
		n++
	}
	if n == 0 {
		return Value{}, false
	}
	return Value{
		Value:     sum,
		Timestamp: time.Unix(0, td.lastSuccess),
		Window:    time.Duration(td.lastSuccess - oldest),
		Series:    n,
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

// matches reports whether sel selects the series. sel sees the series'
// labels and, for a name the series lacks, the target's label of that name.
func matches(sr *series, targetLabels map[string]string, sel Selector) bool {
	return sel == nil || sel.Matches(seriesView{sr.labels, targetLabels})
}

// seriesView is a series' labels over its target's, as labels.Labels.
type seriesView struct {
	own    []labelPair
	target map[string]string
}

func (v seriesView) Lookup(name string) (string, bool) {
	if val, ok := seriesLabel(v.own, name); ok {
		return val, true
	}
	val, ok := v.target[name]
	return val, ok
}

func (v seriesView) Has(name string) bool {
	_, ok := v.Lookup(name)
	return ok
}

func (v seriesView) Get(name string) string {
	val, _ := v.Lookup(name)
	return val
}

func seriesLabel(ls []labelPair, name string) (string, bool) {
	for _, l := range ls {
		if l.name == name {
			return l.value, true
		}
	}
	return "", false
}
