// Package server is the inference server: the Open Inference Protocol v2
// REST API over a model repository, with a dynamic batcher per model
// version and Prometheus metrics.
package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
	"github.com/gpufleet/gpufleet/pkg/inference/serving"
)

// Version is the server's version in GET /v2.
const Version = "0.1.0"

// Options configure a Server.
type Options struct {
	// Models are the repository's models (model.Load).
	Models map[string]*model.Model
	// Backend runs them.
	Backend backend.Backend
	// MaxBodyBytes bounds a request body (default 8 MiB); larger is 413.
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request body (default 10 s); slower is 408.
	BodyTimeout time.Duration
	// Registerer takes the metrics (default a new registry, served on /metrics).
	Registry *prometheus.Registry
	// OnBatch observes every batch of every model (the GPU simulation's
	// busy-time reporter hangs here).
	OnBatch func(model, version string, rows int, took time.Duration)
	// Drift configures the drift statistics of versions that ship
	// reference statistics (drift.go); the zero value disables them.
	Drift DriftConfig
}

// Server serves models.
type Server struct {
	opts    Options
	models  map[string]*servedModel
	metrics *metrics
	ready   atomic.Bool
	handler http.Handler
	close   sync.Once
}

type servedModel struct {
	*model.Model
	versions map[string]*servedVersion
}

type servedVersion struct {
	*model.Version
	model   backend.Model
	batcher *Batcher
	// Label values, built once.
	requests func(code int) prometheus.Counter
	duration prometheus.Observer
}

// New loads every model version onto the backend and starts its batcher.
func New(opts Options) (*Server, error) {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.BodyTimeout == 0 {
		opts.BodyTimeout = 10 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, models: map[string]*servedModel{}, metrics: m}
	var drifts []*driftStats
	var queued []queuedVersion
	for name, mdl := range opts.Models {
		sm := &servedModel{Model: mdl, versions: map[string]*servedVersion{}}
		s.models[name] = sm
		for _, v := range mdl.Versions {
			loaded, err := opts.Backend.Load(v.Layers)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("loading model %s version %s on %s: %w", name, v.Version, opts.Backend.Name(), err)
			}
			sv := &servedVersion{Version: v, model: loaded}
			var onRows func(input, output []float32, rows int)
			if d := newDriftStats(name, v.Version, v.Reference, opts.Drift); d != nil {
				drifts = append(drifts, d)
				in, out := v.In, v.Out
				onRows = func(input, output []float32, rows int) { d.observe(input, in, output, out, rows) }
			}
			batchSize := m.batch.WithLabelValues(name, v.Version)
			mname, vname := name, v.Version
			sv.batcher = NewBatcher(loaded, v.In, v.Out, BatcherConfig{
				MaxBatch: mdl.MaxBatchSize, MaxDelay: mdl.MaxQueueDelay.Duration, MaxQueue: mdl.MaxQueueSize, OnRows: onRows,
				OnBatch: func(rows int, took time.Duration) {
					batchSize.Observe(float64(rows))
					if opts.OnBatch != nil {
						opts.OnBatch(mname, vname, rows, took)
					}
				},
			})
			sv.requests = func(code int) prometheus.Counter {
				return m.requests.WithLabelValues(mname, vname, strconv.Itoa(code))
			}
			// The success series exists from the start, at zero: a rate
			// over it is 0 for a server no one has called yet, where an
			// absent series would leave an HPA on requests_per_second
			// unable to compute (ScalingActive False, no scale-down).
			sv.requests(http.StatusOK)
			sv.duration = m.duration.WithLabelValues(name, v.Version)
			queued = append(queued, queuedVersion{model: name, version: v.Version, rows: sv.batcher.QueuedRows})
			sm.versions[v.Version] = sv
		}
	}
	slices.SortFunc(queued, func(a, b queuedVersion) int {
		return cmp.Or(cmp.Compare(a.model, b.model), cmp.Compare(a.version, b.version))
	})
	if err := opts.Registry.Register(newQueueDepth(queued)); err != nil {
		s.Close()
		return nil, err
	}
	if len(drifts) > 0 {
		// Sorted, so scrapes list versions in a fixed order.
		slices.SortFunc(drifts, func(a, b *driftStats) int {
			return cmp.Or(cmp.Compare(a.model, b.model), cmp.Compare(a.version, b.version))
		})
		if err := opts.Registry.Register(newDriftCollector(drifts)); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.handler = s.routes()
	s.ready.Store(true)
	return s, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets what /v2/health/ready answers; shutdown turns it false
// first, so that load balancers stop sending before the server stops.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close drains every batcher (queued requests finish) and frees the models.
func (s *Server) Close() {
	s.close.Do(func() {
		s.ready.Store(false)
		for _, m := range s.models {
			for _, v := range m.versions {
				if v.batcher != nil {
					v.batcher.Close()
				}
				if v.model != nil {
					_ = v.model.Close()
				}
			}
		}
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, ServerMetadata{Name: "gpufleet-inference-server", Version: Version, Extensions: []string{}})
	})
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			writeError(w, http.StatusServiceUnavailable, "not ready: shutting down")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /v2/models/{name}", s.metadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.metadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.modelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.modelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.infer)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.infer)
	for _, p := range []string{"/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed: inference takes POST")
		})
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// lookup finds the model and, if the path names one, the version; with
// route, a path without a version picks one (default or canary).
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, route bool) (*servedModel, *servedVersion, bool) {
	name := r.PathValue("name")
	m, ok := s.models[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown model %q", name))
		return nil, nil, false
	}
	version := r.PathValue("version")
	if version == "" {
		if !route {
			return m, nil, true
		}
		version = m.RouteRandom().Version
	}
	v, ok := m.versions[version]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q", name, version))
		return nil, nil, false
	}
	return m, v, true
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	m, v, ok := s.lookup(w, r, false)
	if !ok {
		return
	}
	md := ModelMetadata{Name: m.Name, Platform: m.Platform,
		Inputs:  []TensorMetadata{tensorMeta(m.Inputs[0])},
		Outputs: []TensorMetadata{tensorMeta(m.Outputs[0])},
	}
	if v != nil {
		md.Versions = []string{v.Version.Version}
	} else {
		for _, ver := range m.Versions {
			md.Versions = append(md.Versions, ver.Version)
		}
	}
	writeJSON(w, http.StatusOK, md)
}

func tensorMeta(t model.TensorSpec) TensorMetadata {
	return TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: []int{-1, t.Shape[0]}}
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.lookup(w, r, false); !ok {
		return
	}
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not ready: shutting down")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m, v, ok := s.lookup(w, r, true)
	if !ok {
		return
	}
	code, msg := s.serveInfer(w, r, m, v)
	if code != http.StatusOK {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, code, msg)
	}
	v.requests(code).Inc()
	v.duration.Observe(time.Since(start).Seconds())
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// serveInfer answers one request; on success it has written the response.
func (s *Server) serveInfer(w http.ResponseWriter, r *http.Request, m *servedModel, v *servedVersion) (int, string) {
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return http.StatusInternalServerError, err.Error()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	body, err := serving.ReadBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the %d-byte limit", tooBig.Limit)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return http.StatusRequestTimeout, fmt.Sprintf("request body not received within %s", s.opts.BodyTimeout)
		}
		return http.StatusBadRequest, "reading request body: " + err.Error()
	}
	req, rows, batch, err := decodeInfer(body, m.Inputs[0], m.Outputs[0], m.MaxBatchSize)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	out, err := v.batcher.Submit(r.Context(), rows, batch)
	switch {
	case errors.Is(err, ErrQueueFull):
		return http.StatusTooManyRequests, fmt.Sprintf("model %s version %s is at capacity (%d rows queued); retry later", m.Name, v.Version.Version, m.MaxQueueSize)
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "server shutting down; retry on another replica"
	case r.Context().Err() != nil:
		return 499, "client went away" // nginx's code: logged, never seen by the client
	case err != nil:
		return http.StatusInternalServerError, fmt.Sprintf("running model %s version %s: %v", m.Name, v.Version.Version, err)
	}
	resp, err := appendInferResponse(body[:0], m.Name, v.Version.Version, req.ID, m.Outputs[0], out, batch)
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	*bp = resp[:0]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
	return http.StatusOK, ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

// Models lists the served models and versions, for logs.
func (s *Server) Models() []string {
	var out []string
	for name, m := range s.models {
		for _, v := range m.Versions {
			out = append(out, name+"/"+v.Version)
		}
	}
	sort.Strings(out)
	return out
}

// Shutdown is the graceful stop: readiness turns false at once, requests
// keep being served for drainDelay (while load balancers notice), then the
// HTTP server stops taking requests and waits for those in flight, and the
// batchers finish what is queued.
func (s *Server) Shutdown(ctx context.Context, srv *http.Server, drainDelay time.Duration) error {
	s.SetReady(false)
	select {
	case <-time.After(drainDelay):
	case <-ctx.Done():
	}
	err := srv.Shutdown(ctx)
	s.Close()
	return err
}
