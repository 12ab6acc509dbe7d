package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRateTrace writes two days of a 10 s trace with a daily peak and
// a gap, in the serving-qps format.
func writeRateTrace(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("t_seconds,requests_per_second\n")
	for s := 0; s < 2*86400; s += 600 {
		v := 1000.0
		if h := (s % 86400) / 3600; h >= 9 && h < 17 {
			v = 2500 + float64((s/600)%3)*300
		}
		if s == 40*600 {
			fmt.Fprintf(&b, "%d,\n", s)
			continue
		}
		fmt.Fprintf(&b, "%d,%g\n", s, v)
	}
	path := filepath.Join(t.TempDir(), "rate.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAutoscaleReplayJSONAndPlot(t *testing.T) {
	trace := writeRateTrace(t)
	plot := filepath.Join(t.TempDir(), "timeline.png")
	var out, errOut bytes.Buffer
	code := Main([]string{"autoscale", "--trace", trace, "--fill", "hold", "--policy", "forecast", "--replica-capacity", "100", "--json", "--plot", plot}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct {
		Trace           string  `json:"trace"`
		ReplicaCapacity float64 `json:"replica_capacity"`
		Policy          string  `json:"policy"`
		Forecast        bool    `json:"forecast"`
		Totals          []struct {
			Window    string  `json:"window"`
			Underprov float64 `json:"underprovisioned_replica_seconds"`
			GPUHours  float64 `json:"gpu_hours"`
			ScaleUps  int     `json:"scale_ups"`
		} `json:"totals"`
		Timeline []json.RawMessage `json:"timeline"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Policy != "forecast" || !res.Forecast || res.ReplicaCapacity != 100 || len(res.Totals) != 3 || res.Totals[0].Window != "all" {
		t.Errorf("unexpected result header: %+v", res)
	}
	if res.Totals[0].GPUHours <= 0 || res.Totals[0].ScaleUps == 0 || len(res.Timeline) != 2*86400/60 {
		t.Errorf("totals %+v, %d timeline points", res.Totals[0], len(res.Timeline))
	}
	if fi, err := os.Stat(plot); err != nil || fi.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
}

func TestAutoscaleStudy(t *testing.T) {
	trace := writeRateTrace(t)
	plot := filepath.Join(t.TempDir(), "frontier.png")
	var out, errOut bytes.Buffer
	code := Main([]string{"autoscale", "--study", "--trace", trace, "--fill", "linear", "--utilizations", "0.4,0.6,0.8,0.9", "--budget", "0.01", "--plot", plot}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"tuned prom", "tuned reactive", "tuned forecast", "at H="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(plot); err != nil {
		t.Errorf("plot: %v", err)
	}
}

func TestAutoscaleValidateReportsEveryError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"autoscale", "--fill", "guess", "--policy", "magic", "--startup", "0s", "--min-replicas", "5", "--max-replicas", "2", "--behavior", "scaleUp: {bogus: 1}"}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"--trace is required", "--fill", "--policy \"magic\"", "start-up median 0s", "maxReplicas 2 is below minReplicas 5", "--behavior"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errOut.String())
		}
	}
}

func TestAutoscaleTraceErrorNamesTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(path, []byte("t_seconds,requests_per_second\n0,5\n10,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"autoscale", "--trace", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "bad.csv:3: no rate for t=10") {
		t.Errorf("exit %d: %s", code, errOut.String())
	}
}
