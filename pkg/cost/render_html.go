package cost

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// maxChartBars bounds the bars of a chart; smaller groups are summed into
// one "(others)" bar.
const maxChartBars = 20

// Chart geometry, in SVG user units.
const (
	chartLabelWidth = 260
	chartBarWidth   = 420
	chartValueWidth = 120
	chartRowHeight  = 22
	chartBarHeight  = 14
)

// bar is one bar of a chart, laid out.
type bar struct {
	Label     string
	ValueText string
	Y, TextY  int
	Width     float64
	X2        float64
	Color     string
}

// chart is an inline SVG bar chart.
type chart struct {
	Title         string
	Width, Height int
	LabelWidth    int
	Bars          []bar
	Legend        []legendItem
}

type legendItem struct {
	Label, Color string
}

// series is one value per group, for a chart.
type series struct {
	label, color string
	values       []float64
	text         func(float64) string
}

// newChart lays out horizontal bars: for each label, one bar per series,
// scaled to the largest value.
func newChart(title string, labels []string, ss ...series) chart {
	c := chart{Title: title, LabelWidth: chartLabelWidth, Width: chartLabelWidth + chartBarWidth + chartValueWidth}
	peak := 0.0
	for _, s := range ss {
		for _, v := range s.values {
			peak = max(peak, v)
		}
		if len(ss) > 1 {
			c.Legend = append(c.Legend, legendItem{Label: s.label, Color: s.color})
		}
	}
	y := 0
	for i, label := range labels {
		for j, s := range ss {
			v := s.values[i]
			w := 0.0
			if peak > 0 {
				w = v / peak * chartBarWidth
			}
			name := label
			if j > 0 {
				name = ""
			}
			c.Bars = append(c.Bars, bar{
				Label: shorten(name, 36), ValueText: s.text(v),
				Y: y + (chartRowHeight-chartBarHeight)/2, TextY: y + chartRowHeight - 6,
				Width: w, X2: float64(chartLabelWidth) + w + 6, Color: s.color,
			})
			y += chartRowHeight
		}
		if len(ss) > 1 {
			y += 6
		}
	}
	c.Height = max(y, chartRowHeight)
	return c
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// chartGroups is the rows to chart: the largest ones, the rest summed.
func chartGroups(r Report) []Row {
	rows := append([]Row(nil), r.Rows...)
	if len(rows) > maxChartBars {
		others := Row{Group: "(others)"}
		for _, row := range rows[maxChartBars-1:] {
			others.GPUHoursAllocated += row.GPUHoursAllocated
			others.GPUHoursUsed += row.GPUHoursUsed
			others.Cost += row.Cost
			others.IdleGPUHours += row.IdleGPUHours
			others.IdleCost += row.IdleCost
		}
		rows = append(rows[:maxChartBars-1], others)
	}
	if r.Idle != nil && r.Idle.IdleGPUHours > 0 {
		rows = append(rows, *r.Idle)
	}
	return rows
}

type htmlPage struct {
	Report
	Title         string
	FromText      string
	ToText        string
	Window        string
	Observed      string
	Unobserved    string
	TotalCostText string
	Efficiency    string
	CostChart     chart
	HoursChart    chart
	Rows          []htmlRow
	GroupHeader   string
}

type htmlRow struct {
	Group, Alloc, Used, Efficiency, Cost, IdleHours, IdleCost string
	Class                                                     string
}

// WriteHTML writes r as one self-contained HTML page: summary, inline SVG
// bar charts (cost per group, allocated vs used GPU-hours), the table,
// recommendations and warnings. No scripts, no external resources; every
// string is escaped by html/template.
func WriteHTML(w io.Writer, r Report) error {
	groups := chartGroups(r)
	labels := make([]string, len(groups))
	cost, alloc, used := make([]float64, len(groups)), make([]float64, len(groups)), make([]float64, len(groups))
	for i, g := range groups {
		labels[i] = g.Group
		cost[i] = g.Cost + g.IdleCost
		alloc[i] = g.GPUHoursAllocated + g.IdleGPUHours
		used[i] = g.GPUHoursUsed
	}
	hours := func(v float64) string { return fmt.Sprintf("%.2f GPU-h", v) }
	p := htmlPage{
		Report:        r,
		Title:         fmt.Sprintf("GPU cost by %s", r.By),
		FromText:      r.From.UTC().Format(time.RFC3339),
		ToText:        r.To.UTC().Format(time.RFC3339),
		Window:        hoursText(r.WindowSeconds),
		Observed:      hoursText(r.ObservedSeconds),
		Unobserved:    hoursText(r.UnobservedSeconds),
		TotalCostText: r.money(r.TotalCost),
		Efficiency:    percentText(r.Total.Efficiency),
		GroupHeader:   string(r.By),
		HoursChart: newChart("Allocated (incl. idle) vs used GPU-hours", labels,
			series{label: "allocated", color: "#8fb3d9", values: alloc, text: hours},
			series{label: "used", color: "#2f6db3", values: used, text: hours}),
	}
	if r.Priced {
		p.CostChart = newChart("Cost per "+string(r.By), labels,
			series{label: "cost", color: "#d98f3f", values: cost, text: r.money})
	}
	for i, row := range reportRows(r) {
		class := ""
		if i >= len(r.Rows) {
			class = "sum"
		}
		p.Rows = append(p.Rows, htmlRow{
			Group: row.Group, Alloc: fmt.Sprintf("%.2f", row.GPUHoursAllocated), Used: fmt.Sprintf("%.2f", row.GPUHoursUsed),
			Efficiency: percentText(row.Efficiency), Cost: r.costText(row.Cost),
			IdleHours: fmt.Sprintf("%.2f", row.IdleGPUHours), IdleCost: r.costText(row.IdleCost), Class: class,
		})
	}
	return htmlTemplate.Execute(w, p)
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:1em 0}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.sum td{font-weight:bold;background:#f5f5f5}
.summary span{display:inline-block;margin-right:2em}
svg text{font-size:12px;font-family:inherit}
.warn{color:#a15c00}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.FromText}} to {{.ToText}}: {{.Window}}, {{.Observed}} observed{{if .UnobservedSeconds}}, {{.Unobserved}} unobserved{{end}}.</p>
<p class="summary">
{{if .Priced}}<span><b>Total cost</b> {{.TotalCostText}}</span>{{end}}
<span><b>Allocated</b> {{printf "%.2f" .Total.GPUHoursAllocated}} GPU-h</span>
<span><b>Used</b> {{printf "%.2f" .Total.GPUHoursUsed}} GPU-h</span>
<span><b>Efficiency</b> {{.Efficiency}}</span>
<span><b>Idle</b> {{printf "%.2f" .Total.IdleGPUHours}} GPU-h</span>
</p>
{{if .Priced}}{{template "chart" .CostChart}}{{end}}
{{template "chart" .HoursChart}}
<h2>By {{.GroupHeader}}</h2>
<table>
<thead><tr><th>{{.GroupHeader}}</th><th>GPU-h allocated</th><th>GPU-h used</th><th>efficiency</th><th>cost{{if .Currency}} ({{.Currency}}){{end}}</th><th>idle GPU-h</th><th>idle cost</th></tr></thead>
<tbody>
{{range .Rows}}<tr{{if .Class}} class="{{.Class}}"{{end}}><td>{{.Group}}</td><td>{{.Alloc}}</td><td>{{.Used}}</td><td>{{.Efficiency}}</td><td>{{.Cost}}</td><td>{{.IdleHours}}</td><td>{{.IdleCost}}</td></tr>
{{end}}</tbody>
</table>
{{if .Recommendations}}<h2>Recommendations</h2>
<ul>
{{range .Recommendations}}<li><b>{{.Figure}}</b>: {{.Message}}</li>
{{end}}</ul>{{end}}
{{if .Warnings}}<h2>Warnings</h2>
<ul class="warn">
{{range .Warnings}}<li>{{.}}</li>
{{end}}</ul>{{end}}
</body>
</html>
{{define "chart"}}<figure>
<figcaption>{{.Title}}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
{{range .Bars}}{{if .Label}}<text x="0" y="{{.TextY}}">{{.Label}}</text>{{end}}<rect x="{{$.LabelWidth}}" y="{{.Y}}" width="{{printf "%.1f" .Width}}" height="14" fill="{{.Color}}"/><text x="{{printf "%.1f" .X2}}" y="{{.TextY}}">{{.ValueText}}</text>
{{end}}</svg>
{{if .Legend}}<p>{{range .Legend}}<svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{{.Color}}"/></svg> {{.Label}} {{end}}</p>{{end}}
</figure>{{end}}
`))
