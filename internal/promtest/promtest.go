// Package promtest runs a real Prometheus server (the prometheus binary on
// PATH, e.g. Debian's package) for one test and ends it with the test.
// Tests that use it are integration tests: they are skipped under
// `go test -short`.
//
// The server scrapes two jobs whose targets come from file_sd files that
// SetTargets rewrites at any time: "pods", for inference pods, and
// "agents", for gpu-agents, scraped with honor_labels: true so that their
// per-pod series keep their own namespace and pod labels. Prometheus applies
// discovered target changes at most every five seconds; targets in
// Config.Targets are scraped from the start.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

const (
	// DefaultScrapeInterval is the scrape interval of tests.
	DefaultScrapeInterval = time.Second
	readyTimeout          = time.Minute
	stopTimeout           = 10 * time.Second
	pollInterval          = 100 * time.Millisecond
	logTailLines          = 40
)

// Config configures a test server.
type Config struct {
	// ScrapeInterval is the global scrape interval (default 1s); the scrape
	// timeout is the interval, at most 10s.
	ScrapeInterval time.Duration
	// Targets are scraped from the start.
	Targets []Target
}

// Server is a running Prometheus.
type Server struct {
	url     string
	dir     string
	logPath string
	proc    *localcluster.Process
	// mu serializes SetTargets.
	mu sync.Mutex
}

// Start starts Prometheus for t, waits until it is ready, and stops it when
// t ends, printing its log tail if t failed. It skips t in -short mode and
// fails t when Prometheus is not installed or does not become ready.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a Prometheus server; run without -short")
	}
	s, err := Launch(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("promtest: %v", err)
		}
		if t.Failed() {
			t.Logf("prometheus log, last lines:\n%s", s.LogTail(logTailLines))
		}
	})
	return s
}

// Launch starts Prometheus with its files in dir and waits until it is
// ready; the caller must Stop it. Benchmarks use it; tests use Start.
func Launch(dir string, cfg Config) (*Server, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus is not installed: run `make deps` (apt-get install prometheus): %w", err)
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = DefaultScrapeInterval
	}
	if cfg.ScrapeInterval < time.Millisecond || cfg.ScrapeInterval%time.Millisecond != 0 {
		return nil, fmt.Errorf("promtest: scrape interval %v must be a positive whole number of milliseconds", cfg.ScrapeInterval)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("promtest: %w", err)
	}
	configPath, err := writeConfig(dir, cfg.ScrapeInterval)
	if err == nil {
		err = writeTargets(dir, cfg.Targets)
	}
	if err != nil {
		return nil, fmt.Errorf("promtest: %w", err)
	}
	addr, err := testutil.FreeAddr()
	if err != nil {
		return nil, fmt.Errorf("promtest: finding a free port: %w", err)
	}
	s := &Server{
		url:     "http://" + addr,
		dir:     dir,
		logPath: filepath.Join(dir, "prometheus.log"),
	}
	if err := s.start(bin, configPath, addr); err != nil {
		return nil, fmt.Errorf("promtest: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		tail := s.LogTail(logTailLines)
		_ = s.stop()
		return nil, fmt.Errorf("promtest: %w\nprometheus log, last lines:\n%s", err, tail)
	}
	return s, nil
}

// Stop stops Prometheus (SIGTERM, then SIGKILL after a grace period).
func (s *Server) Stop() error { return s.stop() }

// start runs Prometheus the way the control plane's children run: from an
// OS thread kept for it, so it dies with this process (even on SIGKILL) and
// never earlier. Pdeathsig fires when the starting thread exits, and the Go
// runtime ends threads that a finished goroutine left locked, so setting it
// from an arbitrary thread once killed Prometheus in the middle of a
// benchmark, when another child's goroutine ended on that thread.
func (s *Server) start(bin, configPath, addr string) error {
	p, err := localcluster.StartProcess("prometheus", bin, []string{
		"--config.file=" + configPath,
		"--storage.tsdb.path=" + filepath.Join(s.dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, nil, s.logPath)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls /-/ready until Prometheus answers 200, it exits, or ctx
// ends.
func (s *Server) waitReady(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if done, err := s.proc.Exited(); done {
			return false, fmt.Errorf("prometheus exited before it was ready: %v", err)
		}
		code, err := s.get(ctx, "/-/ready", nil)
		switch {
		case err != nil:
			last = err.Error()
		case code != http.StatusOK:
			last = fmt.Sprintf("HTTP %d", code)
		}
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("prometheus at %s not ready (last answer: %s): %w", s.url, last, err)
	}
	return err
}

// stop sends SIGTERM, and SIGKILL if Prometheus has not exited after 10s.
func (s *Server) stop() error {
	if err := s.proc.Stop(stopTimeout); err != nil {
		return fmt.Errorf("stopping prometheus: %w", err)
	}
	return nil
}

// URL returns the server's base URL, e.g. "http://127.0.0.1:41235".
func (s *Server) URL() string { return s.url }

// SetTargets replaces every target. It writes the file_sd files
// atomically; Prometheus picks the change up within seconds (its scrape
// manager applies target updates at most every 5s).
func (s *Server) SetTargets(targets []Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeTargets(s.dir, targets)
}

// targetsResponse is the part of /api/v1/targets the server reads.
type targetsResponse struct {
	Data struct {
		ActiveTargets []struct {
			ScrapeURL string `json:"scrapeUrl"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// WaitForTargetsUp polls /api/v1/targets until at least n active targets
// are up (their latest scrape succeeded), or ctx ends. Its error lists the
// targets' states.
func (s *Server) WaitForTargetsUp(ctx context.Context, n int) error {
	var states []string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		var r targetsResponse
		code, err := s.get(ctx, "/api/v1/targets?state=active", &r)
		if err != nil || code != http.StatusOK {
			states = []string{fmt.Sprintf("listing targets: HTTP %d %v", code, err)}
			return false, nil
		}
		up := 0
		states = states[:0]
		for _, t := range r.Data.ActiveTargets {
			if t.Health == "up" {
				up++
			}
			states = append(states, fmt.Sprintf("%s: %s %s", t.ScrapeURL, t.Health, t.LastError))
		}
		return up >= n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d targets up: %w; targets:\n%s", n, err, strings.Join(states, "\n"))
	}
	return nil
}

// get fetches path and, when into is not nil and the answer is 200, decodes
// its JSON body into it.
func (s *Server) get(ctx context.Context, path string, into any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if into != nil && resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode, err
}

// LogTail returns the last n lines of Prometheus' output.
func (s *Server) LogTail(n int) string { return localcluster.TailFile(s.logPath, n) }
