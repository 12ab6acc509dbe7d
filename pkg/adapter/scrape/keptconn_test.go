package scrape

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connServer counts the connections a test server accepted.
func connServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestKeptConnection(t *testing.T) {
	var n atomic.Int64
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		scrapes   int
		wantConns int64
		wantValue float64
	}{
		{
			name: "one connection for many scrapes",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "c_total %d\n", n.Add(1))
			},
			scrapes: 5, wantConns: 1, wantValue: 5,
		},
		{
			name: "chunked bodies keep the connection",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, "c_total ")
				w.(http.Flusher).Flush() // forces chunked encoding
				fmt.Fprintf(w, "%d\n", n.Add(1))
			},
			scrapes: 3, wantConns: 1, wantValue: 3,
		},
		{
			name: "Connection: close is honoured",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				fmt.Fprintf(w, "c_total %d\n", n.Add(1))
			},
			scrapes: 3, wantConns: 3, wantValue: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.Store(0)
			srv, conns := connServer(t, tc.handler)
			s := newScraper(t)
			s.SetTargets([]Target{{Key: "k", URL: srv.URL + "/metrics"}})
			for i := range tc.scrapes {
				s.ScrapeOnce(context.Background())
				if st, _ := s.Store().Status("k"); !st.Up {
					t.Fatalf("scrape %d failed: %v", i, st.LastError)
				}
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("server accepted %d connections, want %d", got, tc.wantConns)
			}
			if v, ok := s.Store().Gauge("k", "c_total", nil); !ok || v.Value != tc.wantValue {
				t.Errorf("value %v (ok %v), want %v", v.Value, ok, tc.wantValue)
			}
		})
	}
}

// A server that closes idle connections between scrapes costs a retry on a
// new connection, not a failed scrape.
func TestKeptConnectionClosedByServer(t *testing.T) {
	srv, conns := connServer(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "up 1\n") })
	s := newScraper(t)
	s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
	for i := range 3 {
		s.ScrapeOnce(context.Background())
		if st, _ := s.Store().Status("k"); !st.Up {
			t.Fatalf("scrape %d failed: %v", i, st.LastError)
		}
		srv.CloseClientConnections()
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("server accepted %d connections, want 3 (one per scrape after each close)", got)
	}
}

// A body that stalls halfway fails at the timeout, names it, and the
// connection is not reused.
func TestKeptConnectionTimeoutMidBody(t *testing.T) {
	release := make(chan struct{})
	srv, conns := connServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, "up 1\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	s := newScraper(t, WithTimeout(100*time.Millisecond))
	s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
	start := time.Now()
	s.ScrapeOnce(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("scrape took %v, want about the 100ms timeout", took)
	}
	st, _ := s.Store().Status("k")
	if st.Up || !errors.Is(st.LastError, context.DeadlineExceeded) || !strings.Contains(st.LastError.Error(), srv.URL) {
		t.Errorf("status %+v, want a deadline error naming the target", st)
	}
	s.mu.Lock()
	kept := s.targets["k"].conn != nil
	s.mu.Unlock()
	if kept || conns.Load() != 1 {
		t.Errorf("connection kept %v after a timeout (accepted %d)", kept, conns.Load())
	}
}

// Removing a target closes its idle connection.
func TestRemovedTargetClosesConnection(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "up 1\n") }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	s := newScraper(t)
	s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
	s.ScrapeOnce(context.Background())
	s.SetTargets(nil)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the removed target's connection is still open after 5s")
	}
}
