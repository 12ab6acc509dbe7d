package server

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
)

// heldOut reads the shipped version 1's held-out rows (the training
// distribution: the same generator, rows the model never saw).
func heldOut(t *testing.T) [][]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, "property-value", "1", "eval.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, rec := range recs[1:] {
		row := make([]float64, 8)
		for j := range row {
			if row[j], err = strconv.ParseFloat(rec[j], 64); err != nil {
				t.Fatal(err)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// send posts rows to property-value version 1, ten per request.
func send(t *testing.T, s *Server, rows [][]float64) {
	t.Helper()
	for start := 0; start < len(rows); start += 10 {
		batch := rows[start:min(start+10, len(rows))]
		var vals []string
		for _, r := range batch {
			for _, v := range r {
				vals = append(vals, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		body := fmt.Sprintf(`{"inputs":[{"name":"features","datatype":"FP32","shape":[%d,8],"data":[%s]}]}`, len(batch), strings.Join(vals, ","))
		if code, out, _ := do(t, s.Handler(), http.MethodPost, "/v2/models/property-value/versions/1/infer", body); code != http.StatusOK {
			t.Fatalf("infer: %d %s", code, out)
		}
	}
}

// drift gathers the drift gauges of property-value version 1 by feature
// (inputs) and "output:" + name (outputs).
func drift(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] != "property-value" || labels["version"] != "1" {
				continue
			}
			switch f.GetName() {
			case "inference_input_drift":
				out[labels["feature"]] = m.GetGauge().GetValue()
			case "inference_output_drift":
				out["output:"+labels["output"]] = m.GetGauge().GetValue()
			case "inference_drift_window_rows":
				out["rows"] = m.GetGauge().GetValue()
			case "inference_prediction":
				out["predictions"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Traffic like the training data keeps every PSI near zero; shifted
// traffic (houses 60 % larger, closer to the centre) crosses the alert
// threshold of 0.25 on the shifted features and the prediction within a
// bounded number of rows, and the others stay calm.
func TestDriftNearZeroThenCrossesForShiftedTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newServer(t, shipped(t), cpu.New(), func(o *Options) {
		o.Registry = reg
		o.Drift = DriftConfig{WindowRows: 2000}
	})
	rows := heldOut(t)
	if got := drift(t, reg); got["rows"] != 0 || len(got) != 2 { // rows and the empty prediction histogram
		t.Fatalf("before traffic: %v", got)
	}
	send(t, s, rows[:50])
	if got := drift(t, reg); got["rows"] != 50 || got["predictions"] != 50 || len(got) != 2 {
		t.Fatalf("50 rows export no PSI (too few to say anything): %v", got)
	}
	send(t, s, rows[50:])
	calm := drift(t, reg)
	if calm["rows"] < 1900 || calm["predictions"] != float64(len(rows)) {
		t.Fatalf("window %v rows, %v predictions after %d rows", calm["rows"], calm["predictions"], len(rows))
	}
	for k, v := range calm {
		if k != "rows" && k != "predictions" && !(v >= 0 && v < 0.05) {
			t.Errorf("training-like traffic: %s PSI %.4f, want < 0.05", k, v)
		}
	}
	shifted := make([][]float64, len(rows))
	for i, r := range rows {
		s := append([]float64(nil), r...)
		s[0] *= 1.6 // area_m2
		s[4] *= 0.5 // distance_to_center_km
		shifted[i] = s
	}
	sent := 0
	for sent < len(shifted) {
		send(t, s, shifted[sent:sent+100])
		sent += 100
		if d := drift(t, reg); d["area_m2"] > 0.25 && d["distance_to_center_km"] > 0.25 && d["output:price_kusd"] > 0.25 {
			break
		}
	}
	d := drift(t, reg)
	if sent > 1200 {
		t.Errorf("the shift crossed 0.25 only after %d rows (window 2000): %v", sent, d)
	}
	for _, calmFeature := range []string{"age_years", "condition", "garage"} {
		if d[calmFeature] > 0.1 {
			t.Errorf("unshifted %s has PSI %.3f", calmFeature, d[calmFeature])
		}
	}
	t.Logf("alert after %d shifted rows: area %.2f, distance %.2f, price %.2f", sent, d["area_m2"], d["distance_to_center_km"], d["output:price_kusd"])
}

// Without reference statistics, or with the window off, there is no drift
// series.
func TestNoDriftWithoutWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newServer(t, shipped(t), cpu.New(), func(o *Options) { o.Registry = reg })
	send(t, s, heldOut(t)[:200])
	if got := drift(t, reg); len(got) != 0 {
		t.Errorf("drift series with drift off: %v", got)
	}
}
