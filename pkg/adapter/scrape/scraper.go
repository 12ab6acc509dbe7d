package scrape

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Target is one /metrics endpoint to scrape.
type Target struct {
	// Key names the target in queries, e.g. "namespace/pod".
	Key string
	// URL is the full scrape URL.
	URL string
	// Labels are matched by queries where a series lacks the label.
	Labels map[string]string
}

// Scraper scrapes its targets' Prometheus endpoints and stores their
// samples. Create it with New.
type Scraper struct {
	cfg      config
	store    *Store
	metrics  *selfMetrics
	sem      chan struct{}
	inFlight atomic.Int64 // scrapes holding a concurrency slot

	mu      sync.Mutex
	targets map[string]*targetState
	queue   dueQueue        // targets by next scrape time, while Run runs
	wake    chan struct{}   // tells Run the queue changed
	runCtx  context.Context // non-nil while Run runs
	loops   sync.WaitGroup
}

// targetState is the scraping side of one target.
type targetState struct {
	key  string
	url  string
	data *targetData
	conn net.Conn    // idle kept-alive connection (see keptconn.go); guarded by busy
	busy atomic.Bool // a scrape of it is queued or in flight
	// lastErr is the error of the latest scrape, "" after a success;
	// guarded by busy.
	lastErr string
	// host and request are the dial address and the request bytes of the
	// kept-connection path, built at its first scrape; guarded by busy.
	host, request string

	// Guarded by Scraper.mu:
	due     time.Time          // next scheduled scrape
	index   int                // position in the queue, -1 when not queued
	cancel  context.CancelFunc // cancels the scrape in flight, if any
	removed bool
}

// New returns a Scraper with no targets.
func New(opts ...Option) (*Scraper, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("invalid scraper options: %w", err)
	}
	s := &Scraper{
		cfg:     cfg,
		store:   newStore(&cfg),
		sem:     make(chan struct{}, cfg.maxConcurrency),
		targets: map[string]*targetState{},
		wake:    make(chan struct{}, 1),
	}
	s.metrics = newSelfMetrics(s.store)
	return s, nil
}

// Store returns the store that answers queries.
func (s *Scraper) Store() *Store { return s.store }

// SetTargets replaces the target set. Targets that are gone are forgotten at
// once with their series; a target whose URL changed starts afresh. When
// targets share a key, the last one wins.
func (s *Scraper) SetTargets(targets []Target) {
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		want[t.Key] = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for key, ts := range s.targets {
		if t, ok := want[key]; ok && t.URL == ts.url {
			if !maps.Equal(t.Labels, ts.data.target.Labels) {
				s.store.relabel(ts.data, t.Labels)
			}
			continue
		}
		ts.removed = true
		if ts.cancel != nil {
			ts.cancel()
		}
		if ts.busy.CompareAndSwap(false, true) { // idle: close its connection now
			ts.closeConn()
		} // else the scrape holding it closes it when it sees removed
		if ts.index >= 0 {
			heap.Remove(&s.queue, ts.index)
			changed = true
		}
		s.store.remove(ts.data)
		delete(s.targets, key)
	}
	now := time.Now()
	for key, t := range want {
		if _, ok := s.targets[key]; ok {
			continue
		}
		ts := &targetState{key: key, url: t.URL, data: s.store.add(t), index: -1}
		s.targets[key] = ts
		if s.runCtx != nil {
			ts.due = now.Add(s.offset(key))
			heap.Push(&s.queue, ts)
			changed = true
		}
	}
	if changed {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Run scrapes every target once per interval until ctx is done, then waits
// for its scrapes to end. It returns an error only when already running.
//
// One goroutine keeps the targets in a queue by due time and hands due ones
// to a fixed pool of workers (the concurrency bound), so memory does not
// grow with a goroutine per target. Each target is due at its offset and
// then every interval after; a target still queued or in flight when it is
// due again skips that turn.
func (s *Scraper) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("scraper is already running")
	}
	s.runCtx = ctx
	now := time.Now()
	s.queue = s.queue[:0]
	for key, ts := range s.targets {
		ts.due = now.Add(s.offset(key))
		heap.Push(&s.queue, ts)
	}
	s.mu.Unlock()

	work := make(chan *targetState)
	for range s.cfg.maxConcurrency {
		s.loops.Go(func() {
			for ts := range work {
				s.scrape(ctx, ts)
				ts.busy.Store(false)
			}
		})
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*targetState
loop:
	for {
		due, next := s.popDue(due[:0], time.Now())
		for _, ts := range due {
			select {
			case work <- ts:
			case <-ctx.Done():
				ts.busy.Store(false)
				break loop
			}
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
		case <-s.wake:
		}
	}
	close(work)
	s.loops.Wait()
	s.mu.Lock()
	for _, ts := range s.queue {
		ts.index = -1
	}
	s.queue = s.queue[:0]
	s.runCtx = nil
	s.mu.Unlock()
	return nil
}

// popDue moves the targets due at now to their next turn and returns those
// not busy (marked busy), and how long until the next target is due.
func (s *Scraper) popDue(due []*targetState, now time.Time) ([]*targetState, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && !s.queue[0].due.After(now) {
		ts := s.queue[0]
		ts.due = ts.due.Add(s.cfg.interval)
		if !ts.due.After(now) { // fell behind: skip the missed turns
			missed := now.Sub(ts.due)/s.cfg.interval + 1
			ts.due = ts.due.Add(missed * s.cfg.interval)
		}
		heap.Fix(&s.queue, 0)
		if ts.busy.CompareAndSwap(false, true) {
			due = append(due, ts)
		}
	}
	if len(s.queue) == 0 {
		return due, time.Hour
	}
	return due, s.queue[0].due.Sub(now)
}

// ScrapeOnce scrapes every current target once, concurrently within the
// concurrency bound, and returns when all are done. A target whose scrape
// is already in flight is skipped.
func (s *Scraper) ScrapeOnce(ctx context.Context) {
	s.mu.Lock()
	states := make([]*targetState, 0, len(s.targets))
	for _, ts := range s.targets {
		states = append(states, ts)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, ts := range states {
		if ts.busy.CompareAndSwap(false, true) {
			wg.Go(func() {
				s.scrape(ctx, ts)
				ts.busy.Store(false)
			})
		}
	}
	wg.Wait()
}

// offset spreads targets over the jitter span, stably per key, like
// Prometheus does.
func (s *Scraper) offset(key string) time.Duration {
	if s.cfg.jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(s.cfg.jitter))
}

// dueQueue is a min-heap of targets by due time.
type dueQueue []*targetState

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueQueue) Push(x any) {
	ts := x.(*targetState)
	ts.index = len(*q)
	*q = append(*q, ts)
}
func (q *dueQueue) Pop() any {
	old := *q
	ts := old[len(old)-1]
	old[len(old)-1] = nil
	ts.index = -1
	*q = old[:len(old)-1]
	return ts
}

// scrape scrapes ts once and records the outcome. The caller holds ts.busy.
func (s *Scraper) scrape(ctx context.Context, ts *targetState) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.inFlight.Add(1)
	defer func() {
		s.inFlight.Add(-1)
		<-s.sem
	}()

	start, began := s.cfg.now(), time.Now()
	sctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	s.mu.Lock()
	if ts.removed {
		s.mu.Unlock()
		cancel()
		ts.closeConn()
		return
	}
	ts.cancel = cancel
	s.mu.Unlock()
	samples, err := s.fetch(sctx, ts)
	s.mu.Lock()
	ts.cancel = nil
	removed := ts.removed
	s.mu.Unlock()
	cancel()
	if ctx.Err() != nil || removed {
		if removed {
			ts.closeConn()
		}
		return // shutting down or removed: not the target's failure
	}
	s.metrics.observe(time.Since(began), err)
	// Log a target's failure when it starts or its error changes, and its
	// recovery: one line per incident, not one per scrape.
	logger := klog.FromContext(ctx)
	switch {
	case err != nil && err.Error() != ts.lastErr:
		logger.Info("Scrape failing; the target has no metrics until it recovers", "target", ts.key, "err", err)
		ts.lastErr = err.Error()
	case err != nil:
		logger.V(4).Info("Scrape failed", "target", ts.key, "err", err)
	case ts.lastErr != "":
		logger.Info("Scrape recovered", "target", ts.key)
		ts.lastErr = ""
	}
	if dropped := s.store.commit(ts.data, start, samples, err); dropped > 0 {
		s.metrics.seriesDropped.Add(float64(dropped))
		klog.FromContext(ctx).V(4).Info("Series cap reached, samples dropped", "target", ts.key, "dropped", dropped)
	}
}

func (s *Scraper) fetch(ctx context.Context, ts *targetState) ([]parsedSample, error) {
	var body []byte
	var contentType string
	var err error
	if s.cfg.client == nil && strings.HasPrefix(ts.url, "http://") {
		body, contentType, err = s.fetchKeptConn(ctx, ts)
	} else {
		body, contentType, err = s.fetchClient(ctx, ts.url)
	}
	if err != nil {
		return nil, err
	}
	samples, err := parse(body, contentType, s.cfg.keeps)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ts.url, err)
	}
	return samples, nil
}

// fetchClient scrapes through an http.Client (WithHTTPClient, or a URL the
// kept-connection path does not handle).
func (s *Scraper) fetchClient(ctx context.Context, url string) (body []byte, contentType string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", acceptHeader)
	client := s.cfg.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("scraping %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = s.readBody(url, resp)
	return body, resp.Header.Get("Content-Type"), err
}

// readBody checks the status and reads the size-limited body.
func (s *Scraper) readBody(url string, resp *http.Response) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: server returned HTTP status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading body of %s: %w", url, err)
	}
	if int64(len(body)) > s.cfg.maxBodyBytes {
		return nil, fmt.Errorf("body of %s exceeds the limit of %d bytes", url, s.cfg.maxBodyBytes)
	}
	return body, nil
}
