package scrape

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHangingTargetDoesNotDelayOthers(t *testing.T) {
	var hanging, maxHanging atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		n := hanging.Add(1)
		defer hanging.Add(-1)
		for {
			m := maxHanging.Load()
			if n <= m || maxHanging.CompareAndSwap(m, n) {
				break
			}
		}
		<-r.Context().Done()
	}))
	defer hang.Close()
	targets := []Target{{Key: "ns/hang", URL: hang.URL}}
	for i := range 2 {
		srv := newExpoServer(t, textType)
		srv.Set(http.StatusOK, "up 1\n")
		targets = append(targets, Target{Key: "ns/good" + strconv.Itoa(i), URL: srv.URL})
	}
	const interval = 250 * time.Millisecond
	s := newScraper(t, WithInterval(interval), WithTimeout(200*time.Millisecond), WithJitter(0))
	s.SetTargets(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	var maxInFlight int64
	poll(t, 10*time.Second, "five failed scrapes of the hanging target", func() bool {
		maxInFlight = max(maxInFlight, s.inFlight.Load())
		for _, k := range []string{"ns/good0", "ns/good1"} {
			if v, ok := s.Store().Gauge(k, "up", nil); ok && time.Since(v.Timestamp) > 2*interval {
				t.Errorf("%s value is %v old, want fresher than two intervals", k, time.Since(v.Timestamp))
			}
		}
		if _, ok := s.Store().Gauge("ns/hang", "up", nil); ok {
			t.Error("hanging target has a value")
		}
		return testutil.ToFloat64(s.metrics.scrapes.WithLabelValues("error")) >= 5
	})
	for _, k := range []string{"ns/good0", "ns/good1"} {
		if _, ok := s.Store().Gauge(k, "up", nil); !ok {
			t.Errorf("%s has no value", k)
		}
	}
	st, _ := s.Store().Status("ns/hang")
	if st.Up || !errors.Is(st.LastError, context.DeadlineExceeded) {
		t.Errorf("hanging target status = %+v, want a deadline error", st)
	}
	if maxInFlight > int64(len(targets)) {
		t.Errorf("max scrapes in flight = %d, want at most %d", maxInFlight, len(targets))
	}
	// A client that abandons a request closes its connection; the server may
	// notice a little late, but scrapes of one target never stack up.
	if m := maxHanging.Load(); m > 2 {
		t.Errorf("max concurrent requests to the hanging target = %d, want at most 2", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := s.inFlight.Load(); n != 0 {
		t.Errorf("%d scrapes in flight after Run returned", n)
	}
}

func TestFailingTargets(t *testing.T) {
	good := newExpoServer(t, textType)
	good.Set(http.StatusOK, "up 1\n")
	bad := newExpoServer(t, textType)
	bad.Set(http.StatusOK, "up{ 1\n")
	big := newExpoServer(t, textType)
	big.Set(http.StatusOK, "up 1\n# "+strings.Repeat("x", 2000)+"\n")
	status := newExpoServer(t, textType)
	status.Set(http.StatusInternalServerError, "up 1\n")
	proto := newExpoServer(t, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
	proto.Set(http.StatusOK, "up 1\n")

	s := newScraper(t, WithMaxBodyBytes(1024))
	s.SetTargets([]Target{
		{Key: "good", URL: good.URL}, {Key: "bad", URL: bad.URL}, {Key: "big", URL: big.URL},
		{Key: "status", URL: status.URL}, {Key: "proto", URL: proto.URL},
	})
	s.ScrapeOnce(context.Background())

	tests := []struct {
		key     string
		wantErr string
	}{
		{key: "good"},
		{key: "bad", wantErr: "parsing exposition"},
		{key: "big", wantErr: "exceeds the limit of 1024 bytes"},
		{key: "status", wantErr: "HTTP status 500"},
		{key: "proto", wantErr: "unsupported Content-Type"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			st, ok := s.Store().Status(tc.key)
			if !ok {
				t.Fatal("no status")
			}
			_, hasValue := s.Store().Gauge(tc.key, "up", nil)
			if tc.wantErr == "" {
				if !st.Up || st.LastError != nil || !hasValue {
					t.Errorf("status %+v, has value %v; want up with a value", st, hasValue)
				}
				return
			}
			if st.Up || st.LastError == nil || !strings.Contains(st.LastError.Error(), tc.wantErr) {
				t.Errorf("status %+v, want down with an error containing %q", st, tc.wantErr)
			}
			if hasValue {
				t.Error("failed target has a value")
			}
		})
	}
	if got := testutil.ToFloat64(s.metrics.scrapes.WithLabelValues("error")); got != 4 {
		t.Errorf("error scrapes = %v, want 4", got)
	}
	if got := testutil.ToFloat64(s.metrics.scrapes.WithLabelValues("ok")); got != 1 {
		t.Errorf("ok scrapes = %v, want 1", got)
	}
}

func TestStaleness(t *testing.T) {
	tests := []struct {
		name  string
		after func(s *Scraper, srv *expoServer, clock *fakeClock)
	}{
		{
			name: "target starts failing",
			after: func(s *Scraper, srv *expoServer, clock *fakeClock) {
				clock.Advance(time.Second)
				srv.Set(http.StatusServiceUnavailable, "")
				s.ScrapeOnce(context.Background())
			},
		},
		{
			name: "target serves garbage",
			after: func(s *Scraper, srv *expoServer, clock *fakeClock) {
				clock.Advance(time.Second)
				srv.Set(http.StatusOK, "c_total 4 5 6 7\n")
				s.ScrapeOnce(context.Background())
			},
		},
		{
			name: "no scrape for more than three intervals",
			after: func(_ *Scraper, _ *expoServer, clock *fakeClock) {
				clock.Advance(3*time.Second + time.Millisecond)
			},
		},
		{
			name: "target removed",
			after: func(s *Scraper, _ *expoServer, _ *fakeClock) {
				s.SetTargets(nil)
			},
		},
		{
			name: "target URL changed to a dead one",
			after: func(s *Scraper, _ *expoServer, _ *fakeClock) {
				s.SetTargets([]Target{{Key: "ns/p", URL: "http://127.0.0.1:1/metrics"}})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newExpoServer(t, textType)
			clock := newFakeClock()
			s := newScraper(t, WithClock(clock.Now))
			s.SetTargets([]Target{{Key: "ns/p", URL: srv.URL}})
			for i := range 3 {
				clock.Advance(time.Second)
				srv.Set(http.StatusOK, "# TYPE c_total counter\nc_total "+strconv.Itoa(i)+"\n")
				s.ScrapeOnce(context.Background())
			}
			if _, ok := s.Store().Rate("ns/p", "c_total", nil, 0); !ok {
				t.Fatal("no rate before the change")
			}
			tc.after(s, srv, clock)
			if v, ok := s.Store().Rate("ns/p", "c_total", nil, 0); ok {
				t.Errorf("Rate = %+v, want no value", v)
			}
			if v, ok := s.Store().Gauge("ns/p", "c_total", nil); ok {
				t.Errorf("Gauge = %+v, want no value", v)
			}
		})
	}
}

func TestStaleBoundary(t *testing.T) {
	srv := newExpoServer(t, textType)
	srv.Set(http.StatusOK, "g 1\n")
	clock := newFakeClock()
	s := newScraper(t, WithClock(clock.Now))
	s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
	s.ScrapeOnce(context.Background())
	clock.Advance(3 * time.Second)
	if _, ok := s.Store().Gauge("k", "g", nil); !ok {
		t.Error("no value exactly three intervals after the scrape")
	}
}

func TestRunWithConcurrentSetTargets(t *testing.T) {
	var targets []Target
	for i := range 4 {
		srv := newExpoServer(t, textType)
		srv.Set(http.StatusOK, "# TYPE c_total counter\nc_total 1\n")
		targets = append(targets, Target{Key: "t" + strconv.Itoa(i), URL: srv.URL})
	}
	s := newScraper(t, WithInterval(20*time.Millisecond), WithTimeout(20*time.Millisecond), WithMaxConcurrency(2))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stop := make(chan struct{})
	wg.Go(func() {
		churn := time.NewTicker(time.Millisecond)
		defer churn.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-churn.C:
			}
			s.SetTargets(append([]Target{targets[0]}, targets[1+i%3:]...))
			s.Store().Rate("t1", "c_total", nil, 0)
			s.Store().Gauge("t2", "c_total", nil)
		}
	})
	poll(t, 10*time.Second, "a value of the stable target", func() bool {
		_, ok := s.Store().Gauge("t0", "c_total", nil)
		return ok
	})
	if err := s.Run(ctx); err == nil {
		t.Error("second Run did not fail")
	}
	close(stop)
	cancel()
	wg.Wait()
}

func TestNewValidation(t *testing.T) {
	_, err := New(WithInterval(0), WithMaxConcurrency(0), WithMaxSeriesPerTarget(0), WithMaxBodyBytes(-1))
	if err == nil {
		t.Fatal("New accepted invalid options")
	}
	for _, want := range []string{"interval", "timeout", "concurrency", "series", "body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
