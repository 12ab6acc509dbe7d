package noderunner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
)

// Exporter is a minimal real HTTP workload: on port it answers
// POST|GET /v2/models/{model}/infer after Delay, counting each request in
// inference_requests_total{model,version,code} and the requests in flight
// in inference_queue_depth, and serves those on /metrics, like the
// inference server does. Stop waits for requests in flight.
type Exporter struct {
	Port  int
	Delay time.Duration
}

// Start implements Workload.
func (e Exporter) Start(_ context.Context, _ *corev1.Pod, ip string) (func(), error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(e.Port)))
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", ip, err)
	}
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inference_requests_total", Help: "Inference requests by model, version and HTTP status code.",
	}, []string{"model", "version", "code"})
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "inference_queue_depth", Help: "Requests in flight."})
	reg.MustRegister(requests, depth)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
		depth.Inc()
		defer depth.Dec()
		model := r.PathValue("model")
		if e.Delay > 0 {
			time.Sleep(e.Delay)
		}
		requests.WithLabelValues(model, "1", "200").Inc()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"model_name":%q,"outputs":[]}`, strings.ReplaceAll(model, `"`, ""))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			_ = srv.Close()
		}
	}, nil
}
