package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

const groups = 10

// scale creates the scale pods, lets the embedded adapter scrape them all,
// and measures GetMetricBySelector over one group (pods/groups pods) through
// the apiserver, and the adapter's RSS.
func (b *bench) scale(ctx context.Context) (p99ms, rssMiB float64, err error) {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range b.o.scalePods {
		g.Go(func() error {
			p := scrapedPod("scale-"+strconv.Itoa(i), scalePort, map[string]string{"role": "scale", "group": "g" + strconv.Itoa(i%groups)})
			_, err := b.client.CoreV1().Pods(namespace).Create(gctx, p, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, fmt.Errorf("creating pods: %w", err)
	}
	fmt.Printf("created %d pods in %.1f s\n", b.o.scalePods, time.Since(start).Seconds())
	adapter, port, err := b.startAdapter(ctx, "adapter-scale")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = adapter.Stop(5 * time.Second) }()

	perGroup := b.o.scalePods / groups
	sel := func(i int) labels.Selector {
		return labels.SelectorFromSet(labels.Set{"role": "scale", "group": "g" + strconv.Itoa(i%groups)})
	}
	// Every group has a value for every pod: all pods run and are scraped.
	var have int
	err = waitFor(ctx, time.Second, 10*time.Minute, func() bool {
		have = 0
		for i := range groups {
			_, n, err := b.sumRate(sel(i))
			if err != nil {
				return false
			}
			have += n
		}
		return have == b.o.scalePods
	})
	if err != nil {
		return 0, 0, fmt.Errorf("only %d of %d pods have requests_per_second after 10 min\nadapter log:\n%s", have, b.o.scalePods, adapter.LogTail(30))
	}
	fmt.Printf("all %d pods served %.1f s after creation started\n", b.o.scalePods, time.Since(start).Seconds())
	// Let the scrapes run for a while at full size before measuring.
	time.Sleep(10 * time.Second) //nolint:forbidigo // a measurement period, not a wait for a condition
	profiled := make(chan error, 1)
	if dir := os.Getenv("BENCH_PPROF_DIR"); dir != "" {
		go func() { profiled <- b.profile(ctx, port, dir) }() // while the queries run
	} else {
		profiled <- nil
	}
	var lat []float64
	missing := 0
	for i := range b.o.queries {
		t0 := time.Now()
		_, n, err := b.sumRate(sel(i))
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		if err != nil {
			return 0, 0, err
		}
		if n != perGroup {
			missing++
		}
	}
	direct, err := b.directLatencies(ctx, port, sel)
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("the same, sent to the adapter directly (no aggregator): p50 %.1f ms, p99 %.1f ms\n", quantile(direct, 0.5), quantile(direct, 0.99))
	if err := <-profiled; err != nil {
		return 0, 0, err
	}
	rssMiB, err = rss(adapter.PID())
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("GetMetricBySelector over %d pods via kube-apiserver, %d queries: p50 %.1f ms, p99 %.1f ms; %d answers lacked pods\n",
		perGroup, len(lat), quantile(lat, 0.5), quantile(lat, 0.99), missing)
	fmt.Printf("adapter RSS %.0f MiB with %d pods scraped every second\n", rssMiB, b.o.scalePods)
	return quantile(lat, 0.99), rssMiB, nil
}

// sharedExporter serves /metrics for every scale pod from one listener on
// all addresses: a pod is told apart by the local address a scrape reached.
// Each pod's counter grows by one request per second from its start.
type sharedExporter struct {
	srv  *http.Server
	mu   sync.RWMutex
	pods map[string]time.Time // IP -> start
}

func newSharedExporter(port int) (*sharedExporter, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	e := &sharedExporter{pods: map[string]time.Time{}}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

func (e *sharedExporter) serve(w http.ResponseWriter, r *http.Request) {
	addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	host, _, _ := net.SplitHostPort(addr.String())
	e.mu.RLock()
	started, ok := e.pods[host]
	e.mu.RUnlock()
	if !ok || r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	n := int64(time.Since(started).Seconds())
	fmt.Fprintf(w, "# HELP inference_requests_total Inference requests.\n# TYPE inference_requests_total counter\n"+
		"inference_requests_total{model=\"m\",version=\"1\",code=\"200\"} %d\n"+
		"# HELP inference_queue_depth Requests in flight.\n# TYPE inference_queue_depth gauge\ninference_queue_depth 0\n", n)
}

// Start implements noderunner.Workload.
func (e *sharedExporter) Start(_ context.Context, _ *corev1.Pod, ip string) (func(), error) {
	e.mu.Lock()
	e.pods[ip] = time.Now()
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.pods, ip)
		e.mu.Unlock()
	}, nil
}

func (e *sharedExporter) Close() { _ = e.srv.Close() }

// adapterClient is an admin HTTP client for the adapter's own port.
func (b *bench) adapterClient(port int) (*http.Client, string, error) {
	cfg := rest.CopyConfig(b.c.Config)
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	cfg.Insecure, cfg.CAData, cfg.CAFile = true, nil, ""
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, "", err
	}
	return &http.Client{Transport: rt}, cfg.Host, nil
}

// directLatencies sends the selector queries to the adapter itself.
func (b *bench) directLatencies(ctx context.Context, port int, sel func(int) labels.Selector) ([]float64, error) {
	hc, host, err := b.adapterClient(port)
	if err != nil {
		return nil, err
	}
	var lat []float64
	for i := range b.o.queries {
		u := host + "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + namespace + "/pods/%2A/requests_per_second?labelSelector=" + url.QueryEscape(sel(i).String())
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		var list struct{ Items []json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&list)
		_ = resp.Body.Close()
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("direct query: %s %v", resp.Status, err)
		}
	}
	return lat, nil
}

// profile saves the adapter's CPU profile over 10 s and its heap profile
// into dir (BENCH_PPROF_DIR), read with the admin credentials.
func (b *bench) profile(ctx context.Context, port int, dir string) error {
	hc, host, err := b.adapterClient(port)
	if err != nil {
		return err
	}
	for name, path := range map[string]string{"cpu.pprof": "/debug/pprof/profile?seconds=10", "heap.pprof": "/debug/pprof/heap"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s %v", path, resp.Status, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
