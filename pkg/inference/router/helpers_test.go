package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// fakePod is a model server stand-in that counts what it served.
type fakePod struct {
	srv    *httptest.Server
	addr   string
	served atomic.Int64 // requests its handler started
	// status answers inference (default 200).
	status atomic.Int32
	// hold, if set, makes inference wait until it is closed or the
	// connection goes.
	hold  chan struct{}
	held  atomic.Int64
	queue atomic.Int64 // reported as inference_queue_depth
}

func newFakePod(t *testing.T) *fakePod { return newFakePodAt(t, "") }

// newFakePodAt is a fakePod listening on addr ("": a free loopback port).
func newFakePodAt(t *testing.T, addr string) *fakePod {
	t.Helper()
	p := &fakePod{}
	p.status.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE inference_queue_depth gauge\ninference_queue_depth{model=\"m\",version=\"1\"} %d\n", p.queue.Load())
	})
	mux.HandleFunc("/v2/models/", func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if p.hold != nil {
			p.held.Add(1)
			select {
			case <-p.hold:
			case <-r.Context().Done():
				return
			}
		}
		code := int(p.status.Load())
		w.Header().Set("Content-Type", "application/json")
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"model_name":"m","path":%q,"pod":%q}`, r.URL.Path, p.addr)
	})
	p.srv = httptest.NewUnstartedServer(mux)
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		_ = p.srv.Listener.Close()
		p.srv.Listener = l
	}
	p.srv.Start()
	p.addr = strings.TrimPrefix(p.srv.URL, "http://")
	t.Cleanup(func() {
		if p.hold != nil {
			select {
			case <-p.hold:
			default:
				close(p.hold)
			}
		}
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// kill stops the pod like a SIGKILL: the listener and every connection go.
func (p *fakePod) kill() {
	_ = p.srv.Listener.Close()
	p.srv.CloseClientConnections()
}

// staticRules routes every request to pods, one backend.
func staticRules(pods ...*fakePod) string {
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, fmt.Sprintf("%q", p.addr))
	}
	return fmt.Sprintf(`apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- name: pods
  endpoints: [%s]
routes:
- name: all
  backends: [{backend: pods}]
`, strings.Join(addrs, ", "))
}

// newTestRouter serves rules through an httptest server.
func newTestRouter(t *testing.T, cfg Config, rules string) (*Router, string) {
	t.Helper()
	rs, err := Decode([]byte(rules), "models")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueScrapeInterval == 0 {
		cfg.QueueScrapeInterval = -1
	}
	r, err := New(cfg, rs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
	})
	return r, srv.URL
}

const inferBody = `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,1],"data":[1]}]}`

// infer posts one inference request and returns the status and body.
func infer(t *testing.T, base, model, body string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v2/models/"+model+"/infer", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("request: %v", err)
		return 0, "", nil
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// poll waits for cond with a deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// serve runs srv on a free loopback port and returns its base URL.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
