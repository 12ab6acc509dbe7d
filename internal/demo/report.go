package demo

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Files the demo writes into its output directory.
const (
	FileReport       = "report.html"
	FileCostHTML     = "cost.html"
	FileCostText     = "cost.txt"
	FileTimeline     = "timeline.csv"
	FilePrices       = "prices.yaml"
	FileRequestsPlot = "requests-replicas.png"
	FileUtilPlot     = "gpu-utilization.png"
	FileDiagnostics  = "diagnostics.txt"
)

// Result is what a run gathered: what its report shows.
type Result struct {
	// TraceName names the trace (its file).
	TraceName string
	Trace     Trace
	Schedule  Schedule
	// Nodes are the nodes, in the order of the samples' columns.
	Nodes []localcluster.GPUNode
	// RealNode says the model pods ran on the real node, not simulated ones.
	RealNode bool
	// MaxReplicas and TargetRPS are the HPA's.
	MaxReplicas int32
	TargetRPS   int64
	// Samples are the replay's timeline, one a second.
	Samples []stack.Sample
	// Sent and Failed count the load generator's requests; LastError is
	// its last failure.
	Sent, Failed int64
	LastError    string
	// Cost is the GPU cost report by workload, CostByNode by node.
	Cost, CostByNode cost.Report
}

func (r *Result) nodeNames() []string {
	out := make([]string, len(r.Nodes))
	for i, n := range r.Nodes {
		out[i] = n.Name
	}
	return out
}

// WriteOutputs writes the report, its plots, the cost report (HTML and
// text) and the timeline into dir, and returns the paths written.
func WriteOutputs(dir string, r *Result) ([]string, error) {
	title := fmt.Sprintf("%s (%.1f h) replayed in %v (x%.0f)", r.TraceName, r.Trace.Duration().Hours(), r.Schedule.Duration(), r.Schedule.Speed)
	reqPNG, err := plotRequestsReplicas("Load and replicas: "+title, r.Samples)
	if err != nil {
		return nil, err
	}
	utilPNG, err := plotUtilization("GPU utilization per node (adapter gpu_utilization)", r.nodeNames(), r.Samples)
	if err != nil {
		return nil, err
	}
	var costHTML, costText, timeline, report bytes.Buffer
	if err := cost.WriteHTML(&costHTML, r.Cost); err != nil {
		return nil, err
	}
	if err := writeCostText(&costText, r); err != nil {
		return nil, err
	}
	if err := writeTimelineCSV(&timeline, r.nodeNames(), r.Schedule, r.Samples); err != nil {
		return nil, err
	}
	if err := writeReport(&report, r, title, reqPNG, utilPNG, costHTML.String()); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{FileReport, report.Bytes()},
		{FileRequestsPlot, reqPNG},
		{FileUtilPlot, utilPNG},
		{FileCostHTML, costHTML.Bytes()},
		{FileCostText, costText.Bytes()},
		{FileTimeline, timeline.Bytes()},
	}
	var paths []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return paths, fmt.Errorf("writing %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeCostText writes the cost tables by workload and by node.
func writeCostText(w io.Writer, r *Result) error {
	if err := cost.WriteTable(w, r.Cost); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return cost.WriteTable(w, r.CostByNode)
}

// writeTimelineCSV writes one row per sample: times, rates, replicas,
// request counts, then each node's gpu_utilization (0..1, empty when
// unknown) and the GPU indices of its model pods (space-separated).
func writeTimelineCSV(w io.Writer, nodes []string, s Schedule, samples []stack.Sample) error {
	cw := csv.NewWriter(w)
	header := []string{"t_seconds", "trace_hours", "target_rps", "sent_rps", "served_rps", "replicas", "ready", "sent_total", "failed_total"}
	for _, n := range nodes {
		header = append(header, "gpu_utilization_"+n)
	}
	for _, n := range nodes {
		header = append(header, "pod_gpus_"+n)
	}
	_ = cw.Write(header)
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	for _, smp := range samples {
		row := []string{
			f(smp.At.Seconds(), 1), f(s.TraceOffset(smp.At).Hours(), 3), f(smp.TargetRPS, 2), f(smp.SentRPS, 2), f(smp.ServedRPS, 2),
			strconv.Itoa(int(smp.Replicas)), strconv.Itoa(int(smp.Ready)),
			strconv.FormatInt(smp.Sent, 10), strconv.FormatInt(smp.Failed, 10),
		}
		for i := range nodes {
			u := math.NaN()
			if i < len(smp.Utilization) {
				u = smp.Utilization[i]
			}
			row = append(row, f(u, 4))
		}
		for i := range nodes {
			var gpus []string
			if i < len(smp.PodGPUs) {
				gpus = smp.PodGPUs[i]
			}
			row = append(row, strings.Join(gpus, " "))
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// reportPage is what report.html shows.
type reportPage struct {
	Title       string
	Summary     [][2]string
	RequestsPNG template.URL
	UtilPNG     template.URL
	CostDoc     string
	Nodes       []nodeRow
	Prices      string
	Files       []string
	Generated   string
}

type nodeRow struct {
	Name, Model, Capacity string
	GPUs, MaxPods         int
}

// writeReport writes report.html: one self-contained page (the plots are
// embedded PNGs, the cost report an iframe's srcdoc), no scripts, nothing
// fetched from anywhere.
func writeReport(w io.Writer, r *Result, title string, reqPNG, utilPNG []byte, costDoc string) error {
	p := reportPage{
		Title:       "gpufleet demo: " + title,
		RequestsPNG: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(reqPNG)),  //nolint:gosec // our own PNG
		UtilPNG:     template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(utilPNG)), //nolint:gosec // our own PNG
		CostDoc:     costDoc,
		Prices:      Prices,
		Files:       []string{FileRequestsPlot, FileUtilPlot, FileCostHTML, FileCostText, FileTimeline, FilePrices},
		Generated:   time.Now().UTC().Format(time.RFC3339),
	}
	maxPods := map[string]int{}
	maxReplicas, peakUtil, peakNode := int32(0), 0.0, ""
	for _, s := range r.Samples {
		maxReplicas = max(maxReplicas, s.Replicas)
		for i, gpus := range s.PodGPUs {
			if i < len(r.Nodes) {
				maxPods[r.Nodes[i].Name] = max(maxPods[r.Nodes[i].Name], len(gpus))
			}
		}
		for i, u := range s.Utilization {
			if !math.IsNaN(u) && u > peakUtil && i < len(r.Nodes) {
				peakUtil, peakNode = u, r.Nodes[i].Name
			}
		}
	}
	for _, n := range r.Nodes {
		capacity := cost.CapacityType(cost.SpotFromNodeLabels(n.Labels))
		p.Nodes = append(p.Nodes, nodeRow{Name: n.Name, Model: n.Model, Capacity: capacity, GPUs: n.GPUs, MaxPods: maxPods[n.Name]})
	}
	failed := fmt.Sprintf("%d failed", r.Failed)
	if r.Failed > 0 && r.LastError != "" {
		failed += " (last: " + r.LastError + ")"
	}
	nodes := "simulated GPU nodes: Node objects whose pods run as child programs of the demo"
	util := fmt.Sprintf("peak %.1f %% of %s's GPUs (the servers run on CPU; their batches' time is reported as busy GPU time)", peakUtil*100, orNone(peakNode))
	if r.RealNode {
		nodes = "a real node: kubelet, containerd and kube-proxy on this machine running gpufleet's images, installed with kubectl apply -k manifests/overlays/local; its GPUs simulated (mock NVML, capacity advertised by hand)"
		util = fmt.Sprintf("peak %.1f %%: containers cannot report busy time to the simulated GPUs, and no device plugin hands them GPUs yet, so the real node's GPUs read idle", peakUtil*100)
	}
	p.Summary = [][2]string{
		{"Nodes", nodes},
		{"Trace", fmt.Sprintf("%s: %.1f h in %v windows, replayed in %v, %.0f times real speed", r.TraceName, r.Trace.Duration().Hours(), r.Trace.Period, r.Schedule.Duration(), r.Schedule.Speed)},
		{"Load", fmt.Sprintf("peak %.1f requests/s, mean %.1f; %d requests sent, %s", r.Schedule.Peak(), r.Schedule.Mean(), r.Sent, failed)},
		{"Autoscaling", fmt.Sprintf("HPA on requests_per_second, %d per pod, 1 to %d replicas: up to %d wanted", r.TargetRPS, r.MaxReplicas, maxReplicas)},
		{"GPU utilization", util},
	}
	if r.Cost.Priced {
		p.Summary = append(p.Summary, [2]string{"GPU cost", fmt.Sprintf("%s for the %s window at the illustrative prices below: %s allocated to pods, %s idle",
			money(r.Cost, r.Cost.TotalCost), time.Duration(r.Cost.WindowSeconds*float64(time.Second)).String(), money(r.Cost, r.Cost.Total.Cost), money(r.Cost, r.Cost.Total.IdleCost))})
	}
	return reportTemplate.Execute(w, p)
}

func orNone(s string) string {
	if s == "" {
		return "no node"
	}
	return s
}

func money(r cost.Report, v float64) string {
	if r.Currency == "" || r.Currency == cost.DefaultCurrency {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("%.2f %s", v, r.Currency)
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:72em}
table{border-collapse:collapse;margin:1em 0}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
img{max-width:100%;height:auto;border:1px solid #eee}
iframe{width:100%;height:70em;border:1px solid #eee}
pre{background:#f5f5f5;padding:.8em;overflow:auto}
dt{font-weight:bold;float:left;clear:left;width:10em}
dd{margin:0 0 .4em 11em}
.note{color:#666}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>gpufleet on a local Kubernetes control plane: the GPUPack scheduler
packing model pods onto GPU nodes, the metrics adapter feeding the
HorizontalPodAutoscaler requests_per_second from a 1 s scrape, the gpu-agents
reporting GPU use, and a real request-rate trace replayed against it.</p>
<dl>
{{range .Summary}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>
{{end}}</dl>
<h2>Request rate and replicas</h2>
<p><img alt="Target and served requests per second, and the replicas the HPA wanted and the ready ones, over the replay" src="{{.RequestsPNG}}"></p>
<h2>GPU utilization per node</h2>
<p><img alt="gpu_utilization of each node over the replay" src="{{.UtilPNG}}"></p>
<h2>Nodes</h2>
<table>
<thead><tr><th>node</th><th>GPU model</th><th>GPUs</th><th>capacity</th><th>model pods at most</th></tr></thead>
<tbody>
{{range .Nodes}}<tr><td>{{.Name}}</td><td>{{.Model}}</td><td>{{.GPUs}}</td><td>{{.Capacity}}</td><td>{{.MaxPods}}</td></tr>
{{end}}</tbody>
</table>
<h2>GPU cost</h2>
<p class="note">The metrics adapter's cost report for the run (by workload), as <code>gpufleet cost --format html</code> renders it.</p>
<iframe title="GPU cost report" sandbox srcdoc="{{.CostDoc}}"></iframe>
<h3>Prices</h3>
<pre>{{.Prices}}</pre>
<p class="note">Beside this page: {{range $i, $f := .Files}}{{if $i}}, {{end}}<code>{{$f}}</code>{{end}}. Generated {{.Generated}}.</p>
</body>
</html>
`))
