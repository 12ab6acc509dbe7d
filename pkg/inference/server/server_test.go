package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

var repo = filepath.Join("..", "..", "..", "models")

func newServer(t *testing.T, models map[string]*model.Model, be backend.Backend, opts ...func(*Options)) *Server {
	t.Helper()
	o := Options{Models: models, Backend: be}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func shipped(t *testing.T) map[string]*model.Model {
	t.Helper()
	m, err := model.Load(repo, model.Defaults{MaxBatchSize: 8, MaxQueueDelay: time.Millisecond, MaxQueueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Body.String(), rec.Header()
}

// TestRequestCounterStartsAtZero: before any request, every served model
// version exports its success counter at 0, so that requests_per_second
// is 0 (not missing) for an idle server and its HPA can act.
func TestRequestCounterStartsAtZero(t *testing.T) {
	s := newServer(t, shipped(t), cpu.New())
	if err := testutil.CollectAndCompare(s.metrics.requests, strings.NewReader(`
# HELP inference_requests_total Inference requests answered, by model, version and HTTP status code.
# TYPE inference_requests_total counter
inference_requests_total{code="200",model="property-value",version="1"} 0
inference_requests_total{code="200",model="property-value",version="2"} 0
`)); err != nil {
		t.Error(err)
	}
}

func TestMetadataEndpoints(t *testing.T) {
	s := newServer(t, shipped(t), cpu.New())
	h := s.Handler()
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/v2", 200, `"name":"gpufleet-inference-server"`},
		{"/v2", 200, `"extensions":[]`},
		{"/v2/health/live", 200, ""},
		{"/v2/health/ready", 200, ""},
		{"/v2/models/property-value", 200, `"versions":["1","2"]`},
		{"/v2/models/property-value", 200, `"inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}]`},
		{"/v2/models/property-value", 200, `"outputs":[{"name":"price_kusd","datatype":"FP32","shape":[-1,1]}]`},
		{"/v2/models/property-value/versions/2", 200, `"versions":["2"]`},
		{"/v2/models/property-value/ready", 200, ""},
		{"/v2/models/property-value/versions/1/ready", 200, ""},
		{"/v2/models/nope", 404, `{"error":"unknown model \"nope\""}`},
		{"/v2/models/property-value/versions/9", 404, `has no version \"9\"`},
		{"/v2/models/property-value/versions/9/ready", 404, `has no version`},
		{"/v3", 404, `"error":"no such endpoint`},
	} {
		code, body, _ := do(t, h, http.MethodGet, tc.path, "")
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %s; want %d containing %s", tc.path, code, body, tc.code, tc.want)
		}
	}
	s.SetReady(false)
	if code, body, _ := do(t, h, http.MethodGet, "/v2/health/ready", ""); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("ready while shutting down: %d %s", code, body)
	}
}

func TestInferMatchesReference(t *testing.T) {
	models := shipped(t)
	s := newServer(t, models, cpu.New())
	rows := [][]float32{{120, 3, 2, 15, 4.5, 400, 1, 4}, {60, 1, 1, 80, 20, 90, 0, 2}}
	for _, version := range []string{"1", "2"} {
		// Nested data, as many clients send it.
		body := `{"id":"req-7","inputs":[{"name":"features","datatype":"FP32","shape":[2,8],"data":[[120,3,2,15,4.5,400,1,4],[60,1,1,80,20,90,0,2]]}]}`
		code, resp, hdr := do(t, s.Handler(), http.MethodPost, "/v2/models/property-value/versions/"+version+"/infer", body)
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("version %s: %d %s", version, code, resp)
		}
		var got struct {
			ModelName, ModelVersion, ID string `json:"-"`
			Name                        string `json:"model_name"`
			Version                     string `json:"model_version"`
			Id                          string `json:"id"`
			Outputs                     []struct {
				Name     string    `json:"name"`
				Datatype string    `json:"datatype"`
				Shape    []int     `json:"shape"`
				Data     []float64 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal([]byte(resp), &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != "property-value" || got.Version != version || got.Id != "req-7" || len(got.Outputs) != 1 {
			t.Fatalf("response %s", resp)
		}
		o := got.Outputs[0]
		if o.Name != "price_kusd" || o.Datatype != "FP32" || fmt.Sprint(o.Shape) != "[2 1]" || len(o.Data) != 2 {
			t.Fatalf("output %+v", o)
		}
		v, _ := models["property-value"].Lookup(version)
		for i, row := range rows {
			want := backendtest.Reference(v.Layers, row, 1)[0]
			if math.Abs(o.Data[i]-want) > 1e-3*math.Abs(want)+1e-3 {
				t.Errorf("version %s row %d: %v, want %v", version, i, o.Data[i], want)
			}
		}
		if o.Data[0] <= o.Data[1] {
			t.Errorf("a large central house (%v k$) should cost more than a small remote one (%v k$)", o.Data[0], o.Data[1])
		}
	}
}

// Requests that name no version go 90/10 to the default and the canary.
func TestCanaryRouting(t *testing.T) {
	s := newServer(t, shipped(t), cpu.New())
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[100,3,2,10,5,300,1,3]}]}`
	counts := map[string]int{}
	const n = 2000
	for range n {
		code, resp, _ := do(t, s.Handler(), http.MethodPost, "/v2/models/property-value/infer", body)
		if code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
		var r struct {
			Version string `json:"model_version"`
		}
		_ = json.Unmarshal([]byte(resp), &r)
		counts[r.Version]++
	}
	if share := float64(counts["2"]) / n; share < 0.07 || share > 0.13 {
		t.Errorf("canary share %.3f (counts %v), want about 0.10", share, counts)
	}
}

func TestBadRequestsAreClear4xx(t *testing.T) {
	s := newServer(t, shipped(t), cpu.New(), func(o *Options) { o.MaxBodyBytes = 4096 })
	const path = "/v2/models/property-value/versions/1/infer"
	row := `[1,2,3,4,5,6,7,8]`
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"malformed json", `{"inputs": [`, 400, "malformed JSON"},
		{"not an object", `[1,2]`, 400, "malformed JSON"},
		{"unknown field", `{"input": []}`, 400, `unknown field "input"`},
		{"no inputs", `{"inputs": []}`, 400, `expected 1 input ("features")`},
		{"wrong name", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,8],"data":` + row + `}]}`, 400, `unexpected input "x"`},
		{"wrong datatype", `{"inputs":[{"name":"features","datatype":"INT32","shape":[1,8],"data":` + row + `}]}`, 400, `datatype "INT32", the model takes "FP32"`},
		{"wrong shape", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,7],"data":` + row + `}]}`, 400, "want [batch, 8]"},
		{"zero batch", `{"inputs":[{"name":"features","datatype":"FP32","shape":[0,8],"data":[]}]}`, 400, "batch >= 1"},
		{"too few values", `{"inputs":[{"name":"features","datatype":"FP32","shape":[2,8],"data":` + row + `}]}`, 400, "8 values for shape [2 8] (want 16)"},
		{"too many values", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,8,9]}]}`, 400, "more values than the shape holds"},
		{"string value", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,"8"]}]}`, 400, `value 7: "\"8\"" is not a number`},
		{"out of range", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,1e39]}]}`, 400, "outside the FP32 range"},
		{"data not array", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":5}]}`, 400, "data must be a JSON array"},
		{"unknown output", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":` + row + `}],"outputs":[{"name":"price"}]}`, 400, `unknown output "price"`},
		{"batch over max", `{"inputs":[{"name":"features","datatype":"FP32","shape":[65,8],"data":[]}]}`, 400, "over the model's maximum of 64"},
		{"body over limit", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[` + strings.Repeat("1,", 3000) + `1]}]}`, 413, "over the 4096-byte limit"},
	} {
		code, body, _ := do(t, s.Handler(), http.MethodPost, path, tc.body)
		var e ErrorResponse
		if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	if code, body, _ := do(t, s.Handler(), http.MethodPost, "/v2/models/nope/infer", `{}`); code != 404 || !strings.Contains(body, "unknown model") {
		t.Errorf("unknown model: %d %s", code, body)
	}
	if code, _, _ := do(t, s.Handler(), http.MethodGet, path, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on infer: %d", code)
	}
}

// writeTypedModel writes a 3 -> 1 model taking the given input datatype.
func writeTypedModel(t *testing.T, dir, datatype, outType string) {
	t.Helper()
	name := "typed-" + strings.ToLower(datatype)
	mdir := filepath.Join(dir, name, "1")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := model.EncodeSafetensors(map[string]model.Tensor{
		"w": {Shape: []int{3, 1}, Data: []float32{1, 10, 100}}, "b": {Shape: []int{1}, Data: []float32{0.5}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mdir, model.WeightsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("name: %s\ninputs: [{name: x, datatype: %s, shape: [3]}]\noutputs: [{name: out, datatype: %s, shape: [1]}]\nlayers: [{weights: w, bias: b, activation: identity}]\n", name, datatype, outType)
	if err := os.WriteFile(filepath.Join(dir, name, model.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDatatypes(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []string{"FP32", "FP16", "INT32", "INT64", "BOOL"} {
		out := "FP32"
		if dt == "FP16" {
			out = "FP16"
		}
		writeTypedModel(t, dir, dt, out)
	}
	models, err := model.Load(dir, model.Defaults{MaxBatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, models, cpu.New())
	for _, tc := range []struct {
		dt, data, want string
		code           int
	}{
		{"FP32", `[1.5, 2, 3]`, `"name":"out","datatype":"FP32","shape":[1,1],"data":[322]`, 200},
		{"FP16", `[0.1, 0, 0]`, `"datatype":"FP16","shape":[1,1],"data":[0.60009766]`, 200},
		{"INT32", `[1, 2, 3]`, `"data":[321.5]`, 200},
		{"INT32", `[1.5, 2, 3]`, `1.5\" is not an INT32`, 400},
		{"INT32", `[3000000000, 0, 0]`, `is not an INT32`, 400},
		{"INT64", `[3000000000, 0, 0]`, `"data":[3e+09]`, 200},
		{"BOOL", `[true, false, true]`, `"data":[101.5]`, 200},
		{"BOOL", `[1, 0, 1]`, `1\" is not a BOOL`, 400},
		{"FP16", `[70000, 0, 0]`, "outside the FP16 range", 400},
	} {
		body := fmt.Sprintf(`{"inputs":[{"name":"x","datatype":%q,"shape":[1,3],"data":%s}]}`, tc.dt, tc.data)
		code, resp, _ := do(t, s.Handler(), http.MethodPost, "/v2/models/typed-"+strings.ToLower(tc.dt)+"/infer", body)
		if code != tc.code || !strings.Contains(resp, tc.want) {
			t.Errorf("%s %s: %d %s; want %d with %s", tc.dt, tc.data, code, resp, tc.code, tc.want)
		}
	}
}

func FuzzDecodeInfer(f *testing.F) {
	f.Add([]byte(`{"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[2,3],"data":[[1,2,3],[4,5,6]]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1e-3,-0,2E+2]}],"outputs":[{"name":"y"}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[[[[1]]],2,3]}]}`))
	spec := model.TensorSpec{Name: "x", Datatype: "FP32", Shape: []int{3}}
	out := model.TensorSpec{Name: "y", Datatype: "FP32", Shape: []int{1}}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, rows, batch, err := decodeInfer(body, spec, out, 16)
		if err != nil {
			if _, ok := err.(badRequest); !ok {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		if batch < 1 || batch > 16 || len(rows) != batch*3 {
			t.Fatalf("accepted batch %d with %d values", batch, len(rows))
		}
		for _, v := range rows {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("accepted non-finite %v", v)
			}
		}
	})
}

// gate is a backend whose models block until released: it lets tests fill
// queues and watch batches form.
type gate struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches []int
}

// open lets every blocked and future batch run.
func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// gatedServer serves models on a closed gate. The test's cleanup opens the
// gate before the server closes, so a failing test cannot leave a batch
// blocked forever.
func gatedServer(t *testing.T, models map[string]*model.Model) (*Server, *gate) {
	g := &gate{release: make(chan struct{})}
	s := newServer(t, models, g)
	t.Cleanup(g.open) // runs before the server's Close: cleanups run last-in first-out
	return s, g
}

func (g *gate) Name() string { return "gate" }
func (g *gate) Close() error { return nil }
func (g *gate) Load(layers []backend.Layer) (backend.Model, error) {
	return gateModel{g, layers[len(layers)-1].Out}, nil
}

type gateModel struct {
	g   *gate
	out int
}

func (m gateModel) Forward(rows []float32, batch int) ([]float32, error) {
	<-m.g.release
	m.g.mu.Lock()
	m.g.batches = append(m.g.batches, batch)
	m.g.mu.Unlock()
	return make([]float32, batch*m.out), nil
}
func (gateModel) Close() error { return nil }

func TestQueueFullIs429AndBatchesForm(t *testing.T) {
	models := shipped(t)
	m := models["property-value"]
	m.MaxBatchSize, m.MaxQueueSize, m.Canary, m.CanaryVersion = 4, 8, nil, nil
	s, g := gatedServer(t, models)
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,8]}]}`
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	// One request runs (blocked in the gate), eight wait: the queue is full.
	for range 9 {
		wg.Go(func() {
			code, _, _ := do(t, s.Handler(), http.MethodPost, "/v2/models/property-value/versions/1/infer", body)
			codes <- code
		})
		time.Sleep(5 * time.Millisecond) // order arrivals; the assertion below does not depend on timing
	}
	waitFor(t, "a full queue", func() bool { return s.models["property-value"].versions["1"].batcher.QueuedRows() == 8 })
	// A scrape sees the queue as it is now, not as the last batch left it.
	if err := testutil.GatherAndCompare(s.opts.Registry, strings.NewReader(`
# HELP inference_queue_depth Rows waiting for a batch.
# TYPE inference_queue_depth gauge
inference_queue_depth{model="property-value",version="1"} 8
inference_queue_depth{model="property-value",version="2"} 0
`), "inference_queue_depth"); err != nil {
		t.Error(err)
	}
	code, resp, hdr := do(t, s.Handler(), http.MethodPost, "/v2/models/property-value/versions/1/infer", body)
	if code != 429 || hdr.Get("Retry-After") != "1" || !strings.Contains(resp, "at capacity") {
		t.Errorf("request beyond the queue: %d %s (Retry-After %q)", code, resp, hdr.Get("Retry-After"))
	}
	g.open()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("queued request answered %d", c)
		}
	}
	// The eight queued rows ran as two batches of four.
	if fmt.Sprint(g.batches) != "[1 4 4]" {
		t.Errorf("batches %v, want [1 4 4]", g.batches)
	}
	if err := testutil.CollectAndCompare(s.metrics.requests, strings.NewReader(`
# HELP inference_requests_total Inference requests answered, by model, version and HTTP status code.
# TYPE inference_requests_total counter
inference_requests_total{code="200",model="property-value",version="1"} 9
inference_requests_total{code="200",model="property-value",version="2"} 0
inference_requests_total{code="429",model="property-value",version="1"} 1
`)); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A client that sends its headers and then too little body gets 408.
func TestSlowClientGets408(t *testing.T) {
	s := newServer(t, shipped(t), cpu.New(), func(o *Options) { o.BodyTimeout = 200 * time.Millisecond })
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	fmt.Fprintf(conn, "POST /v2/models/property-value/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"inputs\":")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(conn)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 408")) || !bytes.Contains(resp, []byte("not received within 200ms")) {
		t.Errorf("slow client got:\n%s", resp)
	}
}

// Shutdown: readiness turns false at once, requests keep being served
// during the delay, in-flight and queued ones finish, then it stops.
func TestGracefulShutdown(t *testing.T) {
	models := shipped(t)
	// One row per batch: the first request blocks in the gate, the others queue.
	models["property-value"].MaxBatchSize = 1
	s, g := gatedServer(t, models)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(l) }()
	url := "http://" + l.Addr().String()
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,8]}]}`
	results := make(chan error, 8)
	for range 4 {
		go func() { results <- post(url+"/v2/models/property-value/versions/1/infer", body) }()
	}
	waitFor(t, "requests in flight", func() bool { return s.models["property-value"].versions["1"].batcher.QueuedRows() >= 3 })
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background(), srv, 300*time.Millisecond) }()
	waitFor(t, "readiness off", func() bool { return !s.ready.Load() })
	// During the delay new requests are still served.
	go func() { results <- post(url+"/v2/models/property-value/versions/1/infer", body) }()
	time.Sleep(50 * time.Millisecond)
	g.open()
	for range 5 {
		if err := <-results; err != nil {
			t.Errorf("request during shutdown: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := post(url+"/v2/models/property-value/versions/1/infer", body); err == nil {
		t.Error("served after shutdown")
	}
}

func post(url, body string) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}
