package scrape

import (
	"sync"
	"sync/atomic"
	"time"
)

// sample is one scraped value; t is the scrape time in Unix nanoseconds.
type sample struct {
	t    int64
	v    float64
	kind Kind
}

// series is one (metric, label set) of a target with a fixed-length ring
// of its newest samples.
type series struct {
	metric string
	labels []labelPair
	ring   []sample
	head   int // slot of the next write
	n      int // samples held, at most len(ring)
}

func (s *series) add(x sample) {
	if s.n > 0 && s.newest().t == x.t {
		// A duplicate line in one exposition: the last one wins.
		s.ring[(s.head-1+len(s.ring))%len(s.ring)] = x
		return
	}
	s.ring[s.head] = x
	s.head = (s.head + 1) % len(s.ring)
	if s.n < len(s.ring) {
		s.n++
	}
}

func (s *series) newest() sample { return s.ring[(s.head-1+len(s.ring))%len(s.ring)] }

// at returns the i-th held sample, oldest first.
func (s *series) at(i int) sample { return s.ring[(s.head-s.n+i+len(s.ring))%len(s.ring)] }

// TargetStatus is the outcome of a target's latest scrape.
type TargetStatus struct {
	LastScrape time.Time
	LastError  error
	Up         bool
}

// targetData is everything the Store holds for one target. Its own lock
// guards it, so a scrape's commit holds up only the queries of its target.
type targetData struct {
	mu          sync.RWMutex
	removed     bool // no longer (or never again) in Store.targets
	target      Target
	status      TargetStatus
	lastSuccess int64 // Unix nanoseconds of the latest successful scrape
	series      map[string]*series
	byMetric    map[string][]*series
	keyBuf      []byte // series key scratch of commit
}

// Store holds the scraped samples of the current targets. It is safe for
// concurrent use. Its lock guards only the set of targets, which changes
// when pods come and go; each target's samples have a lock of their own
// (targetData.mu), so the 10,000 commits a second of a large cluster never
// queue before a query that reads a thousand targets, nor before each
// other. Lock order: Store.mu, then a targetData.mu.
type Store struct {
	ringLen    int
	window     time.Duration
	staleAfter time.Duration
	slack      time.Duration // how late a scrape may start and still count as on time
	maxSeries  int
	now        func() time.Time

	seriesCount atomic.Int64

	mu      sync.RWMutex
	targets map[string]*targetData
}

func newStore(c *config) *Store {
	return &Store{
		ringLen:    c.ringLen(),
		window:     c.window,
		staleAfter: staleIntervals * c.interval,
		slack:      c.interval / 4,
		maxSeries:  c.maxSeries,
		now:        c.now,
		targets:    map[string]*targetData{},
	}
}

// add registers a target with no samples and returns its handle, replacing
// any previous target with the same key.
func (s *Store) add(t Target) *targetData {
	td := &targetData{target: t, series: map[string]*series{}, byMetric: map[string][]*series{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.targets[t.Key]; old != nil {
		s.retire(old)
	}
	s.targets[t.Key] = td
	return td
}

// retire marks td gone and takes its series out of the count; a commit
// that still holds td then stores nothing. The caller holds s.mu.
func (s *Store) retire(td *targetData) {
	td.mu.Lock()
	defer td.mu.Unlock()
	td.removed = true
	s.seriesCount.Add(-int64(len(td.series)))
}

// relabel updates the target labels of a kept target.
func (s *Store) relabel(td *targetData, labels map[string]string) {
	td.mu.Lock()
	defer td.mu.Unlock()
	td.target.Labels = labels
}

// remove forgets a target and its series at once.
func (s *Store) remove(td *targetData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.targets[td.target.Key] == td {
		delete(s.targets, td.target.Key)
		s.retire(td)
	}
}

// commit records a scrape of td that started at t. It is a no-op for a
// target that has been removed or replaced meanwhile. It returns the number
// of samples dropped by the series cap.
func (s *Store) commit(td *targetData, t time.Time, samples []parsedSample, scrapeErr error) (dropped int) {
	td.mu.Lock()
	defer td.mu.Unlock()
	if td.removed {
		return 0
	}
	td.status = TargetStatus{LastScrape: t, LastError: scrapeErr, Up: scrapeErr == nil}
	if scrapeErr != nil {
		return 0
	}
	now := t.UnixNano()
	td.lastSuccess = now
	for i := range samples {
		ps := &samples[i]
		td.keyBuf = appendSeriesKey(td.keyBuf[:0], ps.metric, ps.labels)
		sr := td.series[string(td.keyBuf)]
		if sr == nil {
			if len(td.series) >= s.maxSeries {
				dropped++
				continue
			}
			sr = &series{metric: ps.metric, labels: ps.labels, ring: make([]sample, s.ringLen)}
			td.series[string(td.keyBuf)] = sr
			td.byMetric[ps.metric] = append(td.byMetric[ps.metric], sr)
			s.seriesCount.Add(1)
		}
		sr.add(sample{t: now, v: ps.value, kind: ps.kind})
	}
	// Forget series that have been absent for longer than the rate window.
	oldest := now - s.window.Nanoseconds()
	for k, sr := range td.series {
		if sr.newest().t < oldest {
			delete(td.series, k)
			s.seriesCount.Add(-1)
			td.byMetric[sr.metric] = deleteSeries(td.byMetric[sr.metric], sr)
			if len(td.byMetric[sr.metric]) == 0 {
				delete(td.byMetric, sr.metric)
			}
		}
	}
	return dropped
}

func deleteSeries(ss []*series, sr *series) []*series {
	for i, x := range ss {
		if x == sr {
			ss[i] = ss[len(ss)-1]
			ss[len(ss)-1] = nil
			return ss[:len(ss)-1]
		}
	}
	return ss
}

func appendSeriesKey(b []byte, metric string, labels []labelPair) []byte {
	b = append(b, metric...)
	for _, l := range labels {
		b = append(append(append(append(b, 0xff), l.name...), 0xfe), l.value...)
	}
	return b
}

// Status returns the latest scrape outcome of a current target.
func (s *Store) Status(key string) (TargetStatus, bool) {
	td := s.target(key)
	if td == nil {
		return TargetStatus{}, false
	}
	td.mu.RLock()
	defer td.mu.RUnlock()
	return td.status, true
}

// target returns the current target of key, or nil.
func (s *Store) target(key string) *targetData {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.targets[key]
}

// fresh says whether td's values may be served: its latest scrape
// succeeded, and that scrape is at most three intervals old. The caller
// holds td.mu.
func (s *Store) fresh(td *targetData) bool {
	return td.status.Up && s.now().UnixNano()-td.lastSuccess <= s.staleAfter.Nanoseconds()
}

func (s *Store) numTargets() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.targets)
}
