package embedded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/names"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable clock for scrape.WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// expoServer serves the exposition text and status set last.
type expoServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
}

func newExpoServer(t *testing.T) *expoServer {
	t.Helper()
	s := &expoServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *expoServer) Set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// hostPort splits the server's address into the pod IP and port annotation.
func (s *expoServer) hostPort(t *testing.T) (ip, port string) {
	t.Helper()
	ip, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ip, port
}

// modelBody is an inference server's exposition: requests of models a, b
// and c (counters) and their queue depths.
func modelBody(a, b, c int) string {
	return fmt.Sprintf(`# HELP inference_requests_total Requests served.
# TYPE inference_requests_total counter
inference_requests_total{model="a"} %d
inference_requests_total{model="b"} %d
inference_requests_total{model="c"} %d
# TYPE inference_queue_depth gauge
inference_queue_depth{model="a"} 3
inference_queue_depth{model="b"} 4
inference_queue_depth{model="c"} 5
# TYPE unrelated_metric gauge
unrelated_metric 1
`, a, b, c)
}

// agentBody is a gpu-agent's exposition on a node with 8 GPUs: pod ml/web
// uses GPUs 0 and 1, pod ml/other GPU 2.
func agentBody() string {
	var b strings.Builder
	b.WriteString("# TYPE gpufleet_pod_gpu_utilization_ratio gauge\n")
	b.WriteString(`gpufleet_pod_gpu_utilization_ratio{namespace="ml",pod="web",gpu="0",model="a"} 0.5` + "\n")
	b.WriteString(`gpufleet_pod_gpu_utilization_ratio{namespace="ml",pod="web",gpu="1",model="b"} 0.75` + "\n")
	b.WriteString(`gpufleet_pod_gpu_utilization_ratio{namespace="ml",pod="other",gpu="2"} 1` + "\n")
	b.WriteString("# TYPE gpufleet_pod_gpu_memory_used_bytes gauge\n")
	b.WriteString(`gpufleet_pod_gpu_memory_used_bytes{namespace="ml",pod="web",gpu="0"} 1000` + "\n")
	b.WriteString(`gpufleet_pod_gpu_memory_used_bytes{namespace="ml",pod="web",gpu="1"} 3000` + "\n")
	b.WriteString("# TYPE gpufleet_gpu_utilization_ratio gauge\n")
	for i := range 8 {
		fmt.Fprintf(&b, "gpufleet_gpu_utilization_ratio{gpu=\"%d\"} %g\n", i, float64(i)/8) // mean 0.4375
	}
	b.WriteString("# TYPE gpufleet_gpu_memory_used_bytes gauge\n")
	for i := range 8 {
		fmt.Fprintf(&b, "gpufleet_gpu_memory_used_bytes{gpu=\"%d\"} %d\n", i, 1<<30)
	}
	return b.String()
}

// fixture is a scraper over a model pod ml/web on node-a and node-a's
// gpu-agent, both discovered by Targets, and a Source over its store.
type fixture struct {
	clock   *fakeClock
	model   *expoServer
	agent   *expoServer
	scraper *scrape.Scraper
	src     *Source
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{clock: &fakeClock{now: t0}, model: newExpoServer(t), agent: newExpoServer(t)}
	fx.model.Set(http.StatusOK, modelBody(100, 200, 300))
	fx.agent.Set(http.StatusOK, agentBody())
	s, err := scrape.New(scrape.WithClock(fx.clock.Now), scrape.WithMetrics(source.SeriesNames()...))
	if err != nil {
		t.Fatalf("scrape.New: %v", err)
	}
	fx.scraper, fx.src = s, &Source{Store: s.Store()}

	modelIP, modelPort := fx.model.hostPort(t)
	agentIP, agentPort := fx.agent.hostPort(t)
	pods := []*corev1.Pod{
		testPod("ml", "web", scrapeOn(names.AnnotationScrapePort, modelPort), onNode("node-a", modelIP)),
		testPod("kube-system", "agent-a", agent, annotated(names.AnnotationScrapePort, agentPort), onNode("node-a", agentIP)),
	}
	targets, errs := Targets(pods, agentSelector)
	if len(targets) != 2 || len(errs) != 0 {
		t.Fatalf("Targets = %v, %v; want two targets", targets, errs)
	}
	s.SetTargets(targets)

	// Two scrapes one second apart: models a, b and c serve 10, 20 and 40
	// requests per second.
	s.ScrapeOnce(t.Context())
	fx.model.Set(http.StatusOK, modelBody(110, 220, 340))
	fx.clock.Advance(time.Second)
	s.ScrapeOnce(t.Context())
	for _, key := range []string{PodKey("ml", "web"), NodeKey("node-a")} {
		if st, ok := s.Store().Status(key); !ok || !st.Up {
			t.Fatalf("target %s: status %+v, %v; want up", key, st, ok)
		}
	}
	return fx
}

func mustParse(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestSourcePodValues(t *testing.T) {
	fx := newFixture(t)
	t1 := t0.Add(time.Second)
	web := source.Pod{Namespace: "ml", Name: "web", Node: "node-a"}
	other := source.Pod{Namespace: "ml", Name: "other", Node: "node-a"}
	tests := []struct {
		name   string
		metric string
		pods   []source.Pod
		sel    string
		want   []source.Sample
		wantOK []bool
	}{
		{
			name:   "rate over every series",
			metric: source.RequestsPerSecond,
			pods:   []source.Pod{web},
			want:   []source.Sample{{Value: 70, Timestamp: t1, Window: time.Second}},
			wantOK: []bool{true},
		},
		{
			name:   "rate with a metric selector",
			metric: source.RequestsPerSecond,
			pods:   []source.Pod{web},
			sel:    "model in (a,b)",
			want:   []source.Sample{{Value: 30, Timestamp: t1, Window: time.Second}},
			wantOK: []bool{true},
		},
		{
			name:   "selector matching no series",
			metric: source.RequestsPerSecond,
			pods:   []source.Pod{web},
			sel:    "model=z",
			want:   []source.Sample{{}},
			wantOK: []bool{false},
		},
		{
			name:   "selector on a target label",
			metric: source.InferenceQueueDepth,
			pods:   []source.Pod{web},
			sel:    "node=node-a,model!=c",
			want:   []source.Sample{{Value: 7, Timestamp: t1}},
			wantOK: []bool{true},
		},
		{
			name:   "sum of a gauge",
			metric: source.InferenceQueueDepth,
			pods:   []source.Pod{web},
			want:   []source.Sample{{Value: 12, Timestamp: t1}},
			wantOK: []bool{true},
		},
		{
			name:   "pod without a target",
			metric: source.InferenceQueueDepth,
			pods:   []source.Pod{{Namespace: "ml", Name: "gone", Node: "node-a"}, web},
			want:   []source.Sample{{}, {Value: 12, Timestamp: t1}},
			wantOK: []bool{false, true},
		},
		{
			name:   "mean over the pod's GPUs on the agent",
			metric: source.GPUUtilization,
			pods:   []source.Pod{web, other},
			want:   []source.Sample{{Value: 0.625, Timestamp: t1}, {Value: 1, Timestamp: t1}},
			wantOK: []bool{true, true},
		},
		{
			name:   "mean with a metric selector",
			metric: source.GPUUtilization,
			pods:   []source.Pod{web},
			sel:    "model in (a,b),gpu=1",
			want:   []source.Sample{{Value: 0.75, Timestamp: t1}},
			wantOK: []bool{true},
		},
		{
			name:   "sum over the pod's GPUs on the agent",
			metric: source.GPUMemoryUsedBytes,
			pods:   []source.Pod{web, other},
			want:   []source.Sample{{Value: 4000, Timestamp: t1}, {}},
			wantOK: []bool{true, false},
		},
		{
			name:   "agent metric needs the pod's node",
			metric: source.GPUUtilization,
			pods:   []source.Pod{{Namespace: "ml", Name: "web"}, {Namespace: "ml", Name: "web", Node: "node-b"}},
			want:   []source.Sample{{}, {}},
			wantOK: []bool{false, false},
		},
		{
			name:   "pod scope is read from the pod, not the agent",
			metric: source.RequestsPerSecond,
			pods:   []source.Pod{{Namespace: "ml", Name: "web"}},
			want:   []source.Sample{{Value: 70, Timestamp: t1, Window: time.Second}},
			wantOK: []bool{true},
		},
		{
			name:   "no pods",
			metric: source.RequestsPerSecond,
			want:   []source.Sample{},
			wantOK: []bool{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sel labels.Selector
			if tc.sel != "" {
				sel = mustParse(t, tc.sel)
			}
			got, ok, err := fx.src.PodValues(context.Background(), source.PodMetrics[tc.metric], tc.pods, sel)
			if err != nil {
				t.Fatalf("PodValues: %v", err)
			}
			if diff := cmp.Diff(tc.wantOK, ok); diff != "" {
				t.Errorf("ok (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got, approx); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceNodeValues(t *testing.T) {
	fx := newFixture(t)
	t1 := t0.Add(time.Second)
	tests := []struct {
		name   string
		metric string
		nodes  []string
		sel    string
		want   []source.Sample
		wantOK []bool
	}{
		{
			name:   "mean over the node's GPUs",
			metric: source.GPUUtilization,
			nodes:  []string{"node-a", "node-b"},
			want:   []source.Sample{{Value: 0.4375, Timestamp: t1}, {}},
			wantOK: []bool{true, false},
		},
		{
			name:   "mean over selected GPUs",
			metric: source.GPUUtilization,
			nodes:  []string{"node-a"},
			sel:    "gpu in (6,7)",
			want:   []source.Sample{{Value: 0.8125, Timestamp: t1}},
			wantOK: []bool{true},
		},
		{
			name:   "sum over the node's GPUs",
			metric: source.GPUMemoryUsedBytes,
			nodes:  []string{"node-a"},
			want:   []source.Sample{{Value: 8 << 30, Timestamp: t1}},
			wantOK: []bool{true},
		},
		{
			name:   "empty selector selects everything",
			metric: source.GPUMemoryUsedBytes,
			nodes:  []string{"node-a"},
			sel:    "",
			want:   []source.Sample{{Value: 8 << 30, Timestamp: t1}},
			wantOK: []bool{true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := fx.src.NodeValues(context.Background(), source.NodeMetrics[tc.metric], tc.nodes, mustParse(t, tc.sel))
			if err != nil {
				t.Fatalf("NodeValues: %v", err)
			}
			if diff := cmp.Diff(tc.wantOK, ok); diff != "" {
				t.Errorf("ok (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got, approx); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceScopeMismatch(t *testing.T) {
	src := &Source{Store: mustScraper(t).Store()}
	ctx := context.Background()
	if _, _, err := src.PodValues(ctx, source.NodeMetrics[source.GPUUtilization], []source.Pod{{Namespace: "ml", Name: "web", Node: "n"}}, nil); err == nil {
		t.Error("PodValues of a node metric succeeded, want an error")
	}
	for _, m := range source.PodMetrics {
		if _, _, err := src.NodeValues(ctx, m, []string{"n"}, nil); err == nil {
			t.Errorf("NodeValues of pod metric %s succeeded, want an error", m.Name)
		}
	}
}

func mustScraper(t *testing.T) *scrape.Scraper {
	t.Helper()
	s, err := scrape.New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSourceFailedOrStaleScrape(t *testing.T) {
	web := source.Pod{Namespace: "ml", Name: "web", Node: "node-a"}
	queries := func(fx *fixture) []bool {
		ctx := context.Background()
		_, rps, _ := fx.src.PodValues(ctx, source.PodMetrics[source.RequestsPerSecond], []source.Pod{web}, nil)
		_, depth, _ := fx.src.PodValues(ctx, source.PodMetrics[source.InferenceQueueDepth], []source.Pod{web}, nil)
		_, util, _ := fx.src.PodValues(ctx, source.PodMetrics[source.GPUUtilization], []source.Pod{web}, nil)
		_, node, _ := fx.src.NodeValues(ctx, source.NodeMetrics[source.GPUUtilization], []string{"node-a"}, nil)
		return []bool{rps[0], depth[0], util[0], node[0]}
	}
	tests := []struct {
		name string
		then func(fx *fixture)
		want []bool // requests_per_second, queue depth, pod GPU utilization, node GPU utilization
	}{
		{
			name: "healthy",
			then: func(fx *fixture) {},
			want: []bool{true, true, true, true},
		},
		{
			name: "model pod fails",
			then: func(fx *fixture) {
				fx.model.Set(http.StatusInternalServerError, "")
				fx.clock.Advance(time.Second)
				fx.scraper.ScrapeOnce(context.Background())
			},
			want: []bool{false, false, true, true},
		},
		{
			name: "agent fails",
			then: func(fx *fixture) {
				fx.agent.Set(http.StatusOK, "not exposition text {{{")
				fx.clock.Advance(time.Second)
				fx.scraper.ScrapeOnce(context.Background())
			},
			want: []bool{true, true, false, false},
		},
		{
			name: "no scrape for too long",
			then: func(fx *fixture) { fx.clock.Advance(time.Minute) },
			want: []bool{false, false, false, false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			tc.then(fx)
			if diff := cmp.Diff(tc.want, queries(fx)); diff != "" {
				t.Errorf("ok of [rps, depth, pod util, node util] (-want +got):\n%s", diff)
			}
		})
	}
}
