// Command bench-autoscale runs bin/gpusim autoscale --study on a
// request-rate trace (default: the 14-day serving-qps trace) and prints
// each policy family's tuned operating point, then, last,
//
//	autoscale trace=T gpu_hours=H underprov_prom=A underprov_reactive=B underprov_forecast=C
//
// where A, B and C are the under-provisioned replica-seconds of the
// Prometheus-adapter pipeline, gpufleet's reactive metric and gpufleet's
// reactive + forecast metrics on the trace's evaluation part, each read
// off its family's frontier at the same GPU-hours H (what the Prometheus
// family, tuned on the first part to the under-provisioning budget,
// spends on the evaluation part). See docs/autoscaling.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type point struct {
	Utilization float64 `json:"utilization"`
	GPUHours    float64 `json:"gpu_hours"`
	Underprov   float64 `json:"underprovisioned_replica_seconds"`
}

type family struct {
	Name         string  `json:"family"`
	Eval         []point `json:"eval"`
	MeetsBudget  bool    `json:"meets_budget"`
	Tuned        float64 `json:"tuned_utilization"`
	TunedEval    point   `json:"tuned_eval"`
	AtH          float64 `json:"underprov_at_h"`
	Extrapolated bool    `json:"extrapolated"`
}

type study struct {
	Trace           string   `json:"trace"`
	ReplicaCapacity float64  `json:"replica_capacity"`
	Budget          float64  `json:"budget"`
	H               float64  `json:"gpu_hours"`
	Families        []family `json:"families"`
}

func main() {
	gpusim := flag.String("gpusim", "bin/gpusim", "gpusim binary")
	trace := flag.String("trace", "../shared/traces/serving-qps/servegen_m_mid_14d.csv", "request-rate trace")
	fill := flag.String("fill", "linear", "gpusim autoscale --fill")
	edge := flag.String("gap-edge-floor", "0.05", "gpusim autoscale --gap-edge-floor")
	out := flag.String("out", "_output/autoscale", "folder for the frontier plot")
	flag.Parse()
	extra := flag.Args()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail("%v", err)
	}
	name := strings.TrimSuffix(filepath.Base(*trace), filepath.Ext(*trace))
	plot := filepath.Join(*out, name+"-frontier.png")
	args := append([]string{"autoscale", "--study", "--json", "--trace", *trace, "--fill", *fill, "--gap-edge-floor", *edge, "--plot", plot}, extra...)
	fmt.Printf("gpusim %s\n", strings.Join(args, " "))
	cmd := exec.Command(*gpusim, args...)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		fail("gpusim autoscale: %v", err)
	}
	var s study
	if err := json.Unmarshal(raw, &s); err != nil || len(s.Families) != 3 {
		fail("gpusim autoscale printed no study of three families (%v): %s", err, raw)
	}
	fmt.Printf("trace=%s replica_capacity=%.4g req/s budget=%.3g of demand replica-seconds (tuning part) plot=%s\n", s.Trace, s.ReplicaCapacity, s.Budget, plot)
	fmt.Printf("%-9s %11s %14s %17s %16s\n", "family", "tuned_util", "eval_gpu_hours", "eval_underprov_rs", "underprov_at_H")
	by := map[string]family{}
	for _, f := range s.Families {
		by[f.Name] = f
		tuned := "  (none)"
		if f.MeetsBudget {
			tuned = fmt.Sprintf("%.3f", f.Tuned)
		}
		note := ""
		if f.Extrapolated {
			note = " (H outside the sweep: nearest end)"
		}
		fmt.Printf("%-9s %11s %14.1f %17.0f %16.0f%s\n", f.Name, tuned, f.TunedEval.GPUHours, f.TunedEval.Underprov, f.AtH, note)
	}
	a, b, c := by["prom"].AtH, by["reactive"].AtH, by["forecast"].AtH
	fmt.Printf("ratios at H: reactive/prom=%.2f forecast/reactive=%.2f (targets <= 0.5 each)\n", b/a, c/b)
	fmt.Printf("autoscale trace=%s gpu_hours=%.1f underprov_prom=%.0f underprov_reactive=%.0f underprov_forecast=%.0f\n", s.Trace, s.H, a, b, c)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-autoscale: "+format+"\n", args...)
	os.Exit(1)
}
