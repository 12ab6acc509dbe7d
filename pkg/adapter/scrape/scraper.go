package scrape

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
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
	runCtx  context.Context // non-nil while Run runs
	loops   sync.WaitGroup
}

// targetState is the scraping side of one target.
type targetState struct {
	key    string
	url    string
	data   *targetData
	busy   atomic.Bool        // a scrape of it is in flight
	cancel context.CancelFunc // stops its loop; nil when none runs
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
	for key, ts := range s.targets {
		if t, ok := want[key]; ok && t.URL == ts.url {
			s.store.relabel(ts.data, t.Labels)
			continue
		}
		if ts.cancel != nil {
			ts.cancel()
		}
		s.store.remove(ts.data)
		delete(s.targets, key)
	}
	for key, t := range want {
		if _, ok := s.targets[key]; ok {
			continue
		}
		ts := &targetState{key: key, url: t.URL, data: s.store.add(t)}
		s.targets[key] = ts
		if s.runCtx != nil {
			s.startLoopLocked(ts)
		}
	}
}

// Run scrapes every target once per interval until ctx is done, then waits
// for its scrapes to end. It returns an error only when already running.
func (s *Scraper) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("scraper is already running")
	}
	s.runCtx = ctx
	for _, ts := range s.targets {
		s.startLoopLocked(ts)
	}
	s.mu.Unlock()

	<-ctx.Done()

	s.mu.Lock()
	for _, ts := range s.targets {
		if ts.cancel != nil {
			ts.cancel()
			ts.cancel = nil
		}
	}
	s.runCtx = nil
	s.mu.Unlock()
	s.loops.Wait()
	return nil
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
		wg.Go(func() { s.scrapeTarget(ctx, ts) })
	}
	wg.Wait()
}

func (s *Scraper) startLoopLocked(ts *targetState) {
	ctx, cancel := context.WithCancel(s.runCtx)
	ts.cancel = cancel
	s.loops.Go(func() { s.loop(ctx, ts) })
}

// loop scrapes one target at its fixed offset within every interval. A
// scrape runs inside the loop, so a slow one never overlaps the next: the
// ticks it overlaps are skipped.
func (s *Scraper) loop(ctx context.Context, ts *targetState) {
	if d := s.offset(ts.key); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tick := time.NewTicker(s.cfg.interval)
	defer tick.Stop()
	for {
		s.scrapeTarget(ctx, ts)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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

// scrapeTarget scrapes ts once and records the outcome.
func (s *Scraper) scrapeTarget(ctx context.Context, ts *targetState) {
	if !ts.busy.CompareAndSwap(false, true) {
		return
	}
	defer ts.busy.Store(false)
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
	samples, err := s.fetch(sctx, ts.url)
	cancel()
	if ctx.Err() != nil {
		return // shutting down or removed: not the target's failure
	}
	s.metrics.observe(time.Since(began), err)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Scrape failed", "target", ts.key, "err", err)
	}
	if dropped := s.store.commit(ts.data, start, samples, err); dropped > 0 {
		s.metrics.seriesDropped.Add(float64(dropped))
		klog.FromContext(ctx).V(4).Info("Series cap reached, samples dropped", "target", ts.key, "dropped", dropped)
	}
}

func (s *Scraper) fetch(ctx context.Context, url string) ([]parsedSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
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
	samples, err := parse(body, resp.Header.Get("Content-Type"), s.cfg.keeps)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return samples, nil
}
