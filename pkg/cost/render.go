package cost

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Format is an output format of a Report.
type Format string

// Formats.
const (
	FormatTable Format = "table"
	FormatCSV   Format = "csv"
	FormatJSON  Format = "json"
	FormatHTML  Format = "html"
)

// Formats lists the valid formats.
var Formats = []Format{FormatTable, FormatCSV, FormatJSON, FormatHTML}

// ParseFormat checks a format's name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown format %q: want one of %s", s, strings.Join(names, ", "))
}

// Write renders r in format f.
func Write(w io.Writer, r Report, f Format) error {
	switch f {
	case FormatTable:
		return WriteTable(w, r)
	case FormatCSV:
		return WriteCSV(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatHTML:
		return WriteHTML(w, r)
	}
	_, err := ParseFormat(string(f))
	return err
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// reportRows are the rows a table or CSV shows: groups, idle, total.
func reportRows(r Report) []Row {
	rows := append([]Row(nil), r.Rows...)
	if r.Idle != nil {
		rows = append(rows, *r.Idle)
	}
	return append(rows, r.Total)
}

// WriteCSV writes one line per group, an (idle) line when grouped by
// namespace or workload, and a (total) line. Hours have 4 decimals, costs
// 2; unknown efficiency and unpriced costs are empty.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{string(r.By), "gpu_hours_allocated", "gpu_hours_used", "efficiency", "cost", "idle_gpu_hours", "idle_cost"})
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	for _, row := range reportRows(r) {
		eff, cost, idleCost := "", "", ""
		if row.Efficiency != nil {
			eff = f(*row.Efficiency, 4)
		}
		if r.Priced {
			cost, idleCost = f(row.Cost, 2), f(row.IdleCost, 2)
		}
		_ = cw.Write([]string{row.Group, f(row.GPUHoursAllocated, 4), f(row.GPUHoursUsed, 4), eff, cost, f(row.IdleGPUHours, 4), idleCost})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes r as an aligned text table with its recommendations
// and warnings.
func WriteTable(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "GPU cost by %s, %s to %s (%s, %s observed)\n", r.By,
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339),
		hoursText(r.WindowSeconds), hoursText(r.ObservedSeconds))
	if r.Priced {
		fmt.Fprintf(&b, "Total cost: %s (allocated %s, idle %s)\n", r.money(r.TotalCost), r.money(r.Total.Cost), r.money(r.Total.IdleCost))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	cur := ""
	if r.Currency != "" {
		cur = " (" + r.Currency + ")"
	}
	fmt.Fprintf(tw, "%s\tGPU-H ALLOC\tGPU-H USED\tEFFICIENCY\tCOST%s\tIDLE GPU-H\tIDLE COST%s\n", strings.ToUpper(string(r.By)), cur, cur)
	for _, row := range reportRows(r) {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%s\t%.2f\t%s\n", row.Group, row.GPUHoursAllocated, row.GPUHoursUsed,
			percentText(row.Efficiency), r.costText(row.Cost), row.IdleGPUHours, r.costText(row.IdleCost))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Recommendations) > 0 {
		b.WriteString("\nRecommendations:\n")
		for _, rec := range r.Recommendations {
			fmt.Fprintf(&b, "  - %s\n", rec.Message)
		}
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, m := range r.Warnings {
			fmt.Fprintf(&b, "  - %s\n", m)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hoursText(seconds float64) string { return fmt.Sprintf("%.1f h", seconds/secondsPerHour) }

func percentText(e *float64) string {
	if e == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *e*100)
}

func (r Report) costText(v float64) string {
	if !r.Priced {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func (r Report) money(v float64) string {
	if r.Currency == "" || r.Currency == DefaultCurrency {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("%.2f %s", v, r.Currency)
}
