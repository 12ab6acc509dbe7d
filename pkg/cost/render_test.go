package cost

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// smallReport is a hand-made report: two namespaces, one named like HTML.
func smallReport(t *testing.T, priced bool) Report {
	t.Helper()
	u := Usage{
		From: t0, To: t0.Add(2 * time.Hour), ObservedSeconds: 7200,
		Entries: []Entry{
			{Key: Key{Namespace: "ml", WorkloadKind: KindDeployment, Workload: "bert", Node: "n1", Model: "V100M16"},
				Accum: Accum{AllocatedGPUSeconds: 7200, UsedGPUSeconds: 1800, AllocatedObservedGPUSeconds: 7200, PodSeconds: 7200}},
			{Key: Key{Namespace: "<x>", WorkloadKind: KindJob, Workload: `a"b&c`, Node: "n1", Model: "V100M16", Spot: true},
				Accum: Accum{AllocatedGPUSeconds: 3600, PodSeconds: 3600}},
		},
		Nodes: []NodeIdle{{NodeKey: NodeKey{Node: "n1", Model: "V100M16"}, UnallocatedGPUSeconds: 1800}},
	}
	o := ReportOptions{By: ByNamespace}
	if priced {
		o.Prices = testPrices(t)
	}
	r, err := BuildReport(u, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWriteCSV(t *testing.T) {
	for _, tc := range []struct {
		priced bool
		want   string
	}{{true, `namespace,gpu_hours_allocated,gpu_hours_used,efficiency,cost,idle_gpu_hours,idle_cost
ml,2.0000,0.5000,0.2500,4.96,0.0000,0.00
<x>,1.0000,0.0000,,0.74,0.0000,0.00
(idle),0.0000,0.0000,,0.00,0.5000,1.24
(total),3.0000,0.5000,0.2500,5.70,0.5000,1.24
`}, {false, `namespace,gpu_hours_allocated,gpu_hours_used,efficiency,cost,idle_gpu_hours,idle_cost
ml,2.0000,0.5000,0.2500,,0.0000,
<x>,1.0000,0.0000,,,0.0000,
(idle),0.0000,0.0000,,,0.5000,
(total),3.0000,0.5000,0.2500,,0.5000,
`}} {
		var b bytes.Buffer
		if err := WriteCSV(&b, smallReport(t, tc.priced)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, b.String()); diff != "" {
			t.Errorf("priced=%v: CSV (-want +got):\n%s", tc.priced, diff)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, smallReport(t, true)); err != nil {
		t.Fatal(err)
	}
	want := `GPU cost by namespace, 2025-01-01T00:00:00Z to 2025-01-01T02:00:00Z (2.0 h, 2.0 h observed)
Total cost: $6.94 (allocated $5.70, idle $1.24)

NAMESPACE  GPU-H ALLOC  GPU-H USED  EFFICIENCY  COST (USD)  IDLE GPU-H  IDLE COST (USD)
ml         2.00         0.50        25%         4.96        0.00        0.00
<x>        1.00         0.00        -           0.74        0.00        0.00
(idle)     0.00         0.00        -           0.00        0.50        1.24
(total)    3.00         0.50        25%         5.70        0.50        1.24

Recommendations:
  - ml/Deployment/bert: 25% GPU utilization on 1.0 GPU per replica over 2.0 GPU-h -> a 300-milli share (gpufleet.io/gpu-milli: 300) would fit its use (mean 0.25 GPU per replica + 20% headroom); it would have cost $1.49 instead of $4.96
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestWriteHTML(t *testing.T) {
	r := smallReport(t, true)
	r.Recommendations = append(r.Recommendations, Recommendation{Kind: RecommendSpot, Target: "<x>/Job/a", Figure: "<b>1.0</b>", Message: "use <spot> & save"})
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", "<svg", "</svg>", "<rect", // charts
		"<td>&lt;x&gt;</td>",          // table cell escaped
		">&lt;x&gt;</text>",           // chart label escaped
		"use &lt;spot&gt; &amp; save", // recommendation escaped
		"$6.94",                       // total cost
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<x>", "<spot>", "src=", "href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	r := smallReport(t, true)
	var b bytes.Buffer
	if err := Write(&b, r, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Usage, back.Usage); diff != "" {
		t.Errorf("usage after a JSON round trip (-want +got):\n%s", diff)
	}
	if back.Rows[1].Efficiency != nil || back.Rows[0].Efficiency == nil || *back.Rows[0].Efficiency != 0.25 {
		t.Errorf("efficiencies after a round trip: %v, %v", back.Rows[0].Efficiency, back.Rows[1].Efficiency)
	}
	if err := Write(&b, r, Format("pdf")); err == nil || !strings.Contains(err.Error(), `unknown format "pdf"`) {
		t.Errorf("Write(pdf) = %v", err)
	}
}

func TestChartOthers(t *testing.T) {
	u := Usage{From: t0, To: t0.Add(time.Hour)}
	for i := range 30 {
		u.Entries = append(u.Entries, Entry{Key: Key{Namespace: strings.Repeat("n", i+1), WorkloadKind: KindPod, Workload: "p"},
			Accum: Accum{AllocatedGPUSeconds: float64(3600 * (i + 1))}})
	}
	r, err := BuildReport(u, ReportOptions{By: ByNamespace})
	if err != nil {
		t.Fatal(err)
	}
	groups := chartGroups(r)
	if len(groups) != maxChartBars || groups[maxChartBars-1].Group != "(others)" {
		t.Fatalf("%d chart groups, last %q", len(groups), groups[len(groups)-1].Group)
	}
	// (others) sums the 11 smallest: 1+...+11 GPU-hours.
	if got := groups[maxChartBars-1].GPUHoursAllocated; !near(got, 66) {
		t.Errorf("(others) %v GPU-h, want 66", got)
	}
}
