package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Version is the router's version in GET /v2.
const Version = "0.1.0"

// Config configures a Router. Zero fields take the defaults in New.
type Config struct {
	// Policy picks a pod within a backend (default LeastRequest).
	Policy Policy
	// Client watches EndpointSlices and pods; needed only by rules with
	// service or pods backends.
	Client kubernetes.Interface
	// Dynamic watches Argo Rollouts; needed only by rules with weightsFrom.
	Dynamic dynamic.Interface
	// Registry takes the metrics and serves them on /metrics (default a
	// new registry).
	Registry *prometheus.Registry
	// MaxAttempts bounds the pods one request is sent to (default 3).
	MaxAttempts int
	// RetryBudgetRatio is the share of requests that may be retried in the
	// long run (default 0.2), with RetryBudgetBurst retries at once (default 20).
	RetryBudgetRatio float64
	RetryBudgetBurst int
	// UpstreamTimeout bounds one request to a pod (default 30s); past it
	// the client gets 504 and the request is not retried.
	UpstreamTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 8 MiB); larger is 413.
	MaxBodyBytes int64
	// QueueScrapeInterval is how often each pod's inference_queue_depth is
	// scraped (default 100ms; negative turns scraping off).
	QueueScrapeInterval time.Duration
	// Transport sends requests to pods (default a keep-alive transport).
	Transport http.RoundTripper
	// Now is the rate limits' clock (default time.Now).
	Now func() time.Time
}

// Router routes Open Inference Protocol v2 requests to model pods.
type Router struct {
	cfg     Config
	metrics *metrics
	budget  *retryBudget
	queues  *queueDepths
	handler http.Handler

	table atomic.Pointer[table]

	mu       sync.Mutex
	sources  map[string]*source // by sourceKey
	rollouts map[string]*rolloutWatch
	runCtx   context.Context

	draining atomic.Bool
	inFlight sync.WaitGroup
}

// New returns a router serving rules. Run starts its discovery.
func New(cfg Config, rules *Rules) (*Router, error) {
	if cfg.Policy == "" {
		cfg.Policy = LeastRequest
	}
	if cfg.Policy != LeastRequest && cfg.Policy != RoundRobin {
		return nil, fmt.Errorf("unknown balancing policy %q: want %s or %s", cfg.Policy, LeastRequest, RoundRobin)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.RetryBudgetRatio == 0 {
		cfg.RetryBudgetRatio = 0.2
	}
	if cfg.RetryBudgetBurst == 0 {
		cfg.RetryBudgetBurst = 20
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = 30 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.QueueScrapeInterval == 0 {
		cfg.QueueScrapeInterval = 100 * time.Millisecond
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			DisableCompression: true,
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	r := &Router{
		cfg: cfg, metrics: m, budget: newRetryBudget(cfg.RetryBudgetRatio, cfg.RetryBudgetBurst),
		sources: map[string]*source{}, rollouts: map[string]*rolloutWatch{},
	}
	if cfg.QueueScrapeInterval > 0 && cfg.Policy == LeastRequest {
		if r.queues, err = newQueueDepths(cfg.QueueScrapeInterval, cfg.Registry); err != nil {
			return nil, err
		}
	}
	if err := r.SetRules(rules); err != nil {
		return nil, err
	}
	r.handler = r.routes()
	return r, nil
}

// Handler is the HTTP API.
func (r *Router) Handler() http.Handler { return r.handler }

// Ready says whether the router takes requests: every backend's discovery
// has listed once, and it is not draining.
func (r *Router) Ready() bool {
	if r.draining.Load() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx == nil {
		return false
	}
	for _, s := range r.sources {
		if !s.synced() {
			return false
		}
	}
	return true
}

// Run starts discovery, queue-depth scraping and Rollout watches, and
// stops them when ctx ends.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.runCtx != nil {
		r.mu.Unlock()
		return errors.New("router is already running")
	}
	r.runCtx = ctx
	for _, s := range r.sources {
		s.start(ctx, r.cfg.Client)
	}
	for _, w := range r.rollouts {
		w.start(ctx, r.cfg.Dynamic)
	}
	r.mu.Unlock()
	if r.queues != nil {
		go r.queues.run(ctx)
	}
	<-ctx.Done()
	r.mu.Lock()
	r.runCtx = nil
	for _, s := range r.sources {
		s.stop()
	}
	r.mu.Unlock()
	return nil
}

// Shutdown is the graceful stop: readiness turns false at once, requests
// keep being served for drainDelay (while load balancers notice), then the
// HTTP server stops taking requests and waits for those in flight.
func (r *Router) Shutdown(ctx context.Context, srv *http.Server, drainDelay time.Duration) error {
	r.draining.Store(true)
	select {
	case <-time.After(drainDelay):
	case <-ctx.Done():
	}
	err := srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { r.inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

func (r *Router) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "gpufleet-model-router", "version": Version, "extensions": []string{}})
	})
	live := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	ready := func(w http.ResponseWriter, _ *http.Request) {
		if !r.Ready() {
			writeError(w, http.StatusServiceUnavailable, "not ready: discovering backends or shutting down")
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("GET /v2/health/live", live)
	mux.HandleFunc("GET /healthz", live)
	mux.HandleFunc("GET /v2/health/ready", ready)
	mux.HandleFunc("GET /readyz", ready)
	mux.HandleFunc("/v2/models/", r.serveModel)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", req.Method, req.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the v2 protocol's error body.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func logger(ctx context.Context) klog.Logger { return klog.FromContext(ctx) }
