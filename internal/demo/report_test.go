package demo

import (
	"bytes"
	"encoding/base64"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/cost"
)

// testResult is a short run on two nodes: the load rises, the HPA adds a
// replica on v100-a, the load falls.
func testResult(t *testing.T) *Result {
	t.Helper()
	sched := Schedule{Step: time.Second, Rates: []float64{4, 12, 8}, Speed: 600}
	nan := math.NaN()
	samples := []stack.Sample{
		{At: time.Second, TargetRPS: 4, SentRPS: 4, ServedRPS: nan, Replicas: 1, Ready: 1, Utilization: []float64{0, nan}, PodGPUs: [][]string{{"0"}, nil}, Sent: 4},
		{At: 2 * time.Second, TargetRPS: 12, SentRPS: 12, ServedRPS: 10.5, Replicas: 3, Ready: 2, Utilization: []float64{0.0125, 0}, PodGPUs: [][]string{{"0", "1"}, nil}, Sent: 16},
		{At: 3 * time.Second, TargetRPS: 8, SentRPS: 8, ServedRPS: 8, Replicas: 3, Ready: 3, Utilization: []float64{0.01, 0}, PodGPUs: [][]string{{"0", "1"}, {"3"}}, Sent: 24, Failed: 1},
	}
	start := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	u := cost.Usage{
		From: start, To: start.Add(2 * time.Minute), ObservedSeconds: 120,
		Entries: []cost.Entry{{
			Key:   cost.Key{Namespace: "serving", WorkloadKind: "Deployment", Workload: "property-value", Node: "v100-a", Model: "V100M16"},
			Accum: cost.Accum{AllocatedGPUSeconds: 360, UsedGPUSeconds: 3.6, AllocatedObservedGPUSeconds: 360, PodSeconds: 360, Requests: 900, RequestsObservedSeconds: 360},
		}},
		Nodes: []cost.NodeIdle{
			{NodeKey: cost.NodeKey{Node: "v100-a", Model: "V100M16"}, UnallocatedGPUSeconds: 600},
			{NodeKey: cost.NodeKey{Node: "t4-a", Model: "T4", Spot: true}, UnallocatedGPUSeconds: 480},
		},
	}
	p, err := prices()
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{
		TraceName: "genai-qps/qps.csv", Trace: Trace{Period: 57 * time.Second, Rates: make([]float64, 32)}, Schedule: sched,
		Nodes: Nodes()[:1], MaxReplicas: 10, TargetRPS: 5, Samples: samples, Sent: 24, Failed: 1, LastError: `http://127.1.1.1:8000: 503 <Service "Unavailable">`,
	}
	r.Nodes = append(r.Nodes, Nodes()[2])
	if r.Cost, err = cost.BuildReport(u, cost.ReportOptions{By: cost.ByWorkload, Prices: p}); err != nil {
		t.Fatal(err)
	}
	if r.CostByNode, err = cost.BuildReport(u, cost.ReportOptions{By: cost.ByNode, Prices: p}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWriteOutputs(t *testing.T) {
	dir := t.TempDir()
	r := testResult(t)
	paths, err := WriteOutputs(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileReport, FileRequestsPlot, FileUtilPlot, FileCostHTML, FileCostText, FileTimeline} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", name, err)
		}
	}
	if len(paths) != 6 || filepath.Base(paths[0]) != FileReport {
		t.Errorf("paths %v: want the 6 files, the report first", paths)
	}
	for _, name := range []string{FileRequestsPlot, FileUtilPlot} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG", name)
		}
	}
	text, _ := os.ReadFile(filepath.Join(dir, FileCostText))
	for _, want := range []string{"GPU cost by workload", "serving/Deployment/property-value", "GPU cost by node", "t4-a"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("%s does not contain %q:\n%s", FileCostText, want, text)
		}
	}
}

// srcOrHref matches every attribute that could fetch or link something.
var srcOrHref = regexp.MustCompile(`(?i)\s(src|href|action|data|poster)\s*=\s*"([^"]*)"`)

func TestReportIsSelfContained(t *testing.T) {
	r := testResult(t)
	var costDoc bytes.Buffer
	if err := cost.WriteHTML(&costDoc, r.Cost); err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\nfake")
	var b bytes.Buffer
	if err := writeReport(&b, r, "title <&>", png, png, costDoc.String()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, m := range srcOrHref.FindAllStringSubmatch(page, -1) {
		if m[1] != "src" || !strings.HasPrefix(m[2], "data:image/png;base64,") {
			t.Errorf("external reference %s=%q", m[1], m[2])
		}
	}
	if n := strings.Count(page, `src="data:image/png;base64,`+base64.StdEncoding.EncodeToString(png)+`"`); n != 2 {
		t.Errorf("%d embedded PNGs, want 2", n)
	}
	for _, bad := range []string{"<script", "url(", "@import", "<link", "title <&>"} {
		if strings.Contains(strings.ToLower(page), strings.ToLower(bad)) {
			t.Errorf("report contains %q", bad)
		}
	}
	// The cost report is the iframe's document, escaped into its srcdoc.
	if !strings.Contains(page, `srcdoc="&lt;!DOCTYPE html&gt;`) || !strings.Contains(page, "serving/Deployment/property-value") {
		t.Error("the cost report is not embedded as the iframe's srcdoc")
	}
	for _, want := range []string{
		"title &lt;&amp;&gt;", "24 requests sent, 1 failed (last: http://127.1.1.1:8000: 503 &lt;Service &#34;Unavailable&#34;&gt;)",
		"peak 1.2 % of v100-a", "1 to 10 replicas: up to 3 wanted", "<td>t4-a</td><td>T4</td><td>4</td><td>spot</td><td>1</td>",
		"V100M32: {onDemand: 3.90, spot: 1.17}",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
}

func TestTimelineCSV(t *testing.T) {
	r := testResult(t)
	var b bytes.Buffer
	if err := writeTimelineCSV(&b, []string{"v100-a", "t4-a"}, r.Schedule, r.Samples); err != nil {
		t.Fatal(err)
	}
	want := `t_seconds,trace_hours,target_rps,sent_rps,served_rps,replicas,ready,sent_total,failed_total,gpu_utilization_v100-a,gpu_utilization_t4-a,pod_gpus_v100-a,pod_gpus_t4-a
1.0,0.167,4.00,4.00,,1,1,4,0,0.0000,,0,
2.0,0.333,12.00,12.00,10.50,3,2,16,0,0.0125,0.0000,0 1,
3.0,0.500,8.00,8.00,8.00,3,3,24,1,0.0100,0.0000,0 1,3
`
	if b.String() != want {
		t.Errorf("timeline:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgressLines(t *testing.T) {
	r := testResult(t)
	p := newProgress([]string{"v100-a", "t4-a"}, r.Schedule)
	got := p.header() + p.line(r.Samples[0]) + p.line(r.Samples[2])
	want := `     t   trace  target  served replicas failed  v100-a   t4-a  model pods (node: GPU indices)
                 req/s   req/s want/rdy         GPU util %
    1s    0h10     4.0       -      1/1      0     0.0      -  v100-a: 0
    3s    0h30     8.0     8.0      3/3      1     1.0    0.0  v100-a: 0,1  t4-a: 3
`
	if got != want {
		t.Errorf("progress:\n%s\nwant:\n%s", got, want)
	}
}

func TestIntegerTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 8, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{1, 180, []float64{30, 60, 90, 120, 150, 180}},
		{0.5, 20, []float64{2, 4, 6, 8, 10, 12, 14, 16, 18, 20}},
	} {
		var got []float64
		for _, tick := range (integerTicks{}).Ticks(tc.lo, tc.hi) {
			got = append(got, tick.Value)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ticks over [%v, %v]: %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
}
