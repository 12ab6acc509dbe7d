package promsource

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// fakeProm answers every query with a canned response and records the
// requests.
type fakeProm struct {
	status int
	body   string
	// block makes the handler wait for the client to give up; arrived is
	// closed when the first request arrives.
	block   bool
	arrived chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, contentType, path, query, timeout string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{
		method:      r.Method,
		contentType: r.Header.Get("Content-Type"),
		path:        r.URL.Path,
		query:       r.PostForm.Get("query"),
		timeout:     r.PostForm.Get("timeout"),
	})
	f.mu.Unlock()
	f.once.Do(func() {
		if f.arrived != nil {
			close(f.arrived)
		}
	})
	if f.block {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

func (f *fakeProm) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeProm) queries() []string {
	var qs []string
	for _, r := range f.recorded() {
		qs = append(qs, r.query)
	}
	return qs
}

// start serves f and returns a Source that queries it.
func (f *fakeProm) start(t *testing.T, opts ...Option) (*Source, string) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	s, err := New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, srv.URL
}

// vector returns a successful instant query response with the given
// results (see result).
func vector(results ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(results, ",") + `]}}`
}

// result is one element of a vector: labels (JSON), the timestamp in
// seconds and the value.
func result(labels, ts, value string) string {
	return fmt.Sprintf(`{"metric":%s,"value":[%s,%q]}`, labels, ts, value)
}

// ts is the time of canned results, tsTime the same as a time.Time.
const ts = "1700000000.5"

var tsTime = time.UnixMilli(1700000000500)

var (
	rps   = source.PodMetrics[source.RequestsPerSecond]
	queue = source.PodMetrics[source.InferenceQueueDepth]
	podGU = source.PodMetrics[source.GPUUtilization]
	nodeG = source.NodeMetrics[source.GPUUtilization]
)
