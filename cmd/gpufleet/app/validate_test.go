package app

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// runValidate runs `gpufleet validate ARGS` from the repository root's
// models and returns its output and error.
func runValidate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"validate", "--model-repository", filepath.Join("..", "..", "..", "models")}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func TestValidateCommand(t *testing.T) {
	thresholds := filepath.Join("..", "..", "..", "models", "property-value", "validate.yaml")

	// The contract: the shipped model passes its shipped gate, named or
	// found in the repository.
	for _, args := range [][]string{{"--model", "property-value", "--thresholds", thresholds}, {"--model", "property-value"}} {
		out, err := runValidate(t, args...)
		if err != nil || !strings.Contains(out, "bias_gap") {
			t.Fatalf("%v: shipped model failed: %v\n%s", args, err, out)
		}
	}
	out, err := runValidate(t, "--model", "property-value", "--thresholds", thresholds)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rmse", "PASS", "group house", "bias_gap"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Flags override the file, and every failed check is named.
	out, err = runValidate(t, "--model", "property-value", "--thresholds", thresholds, "--max-rmse", "10", "--min-r2", "0.999")
	if err == nil || !strings.Contains(err.Error(), "rmse 37.6") || !strings.Contains(err.Error(), "r2 0.97") || !strings.Contains(out, "FAIL") {
		t.Errorf("error %v, output:\n%s", err, out)
	}

	// JSON, candidate against baseline, the repository's gate and a flag.
	out, err = runValidate(t, "--model", "property-value", "--version", "2", "--baseline-version", "1", "--max-regression", "0.1", "--group-by", "property_type", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Candidate struct{ Version string }
		Baseline  struct{ Version string }
		Checks    []struct {
			Name string
			Pass bool
		}
		Passed bool
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Candidate.Version != "2" || r.Baseline.Version != "1" || len(r.Checks) != 6 || r.Checks[5].Name != "rmse_increase_vs_1" || !r.Passed {
		t.Errorf("got %+v", r)
	}

	// Bad invocations name what to fix.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--model is required"},
		{[]string{"--model", "property-value", "--thresholds", "none"}, "no threshold given"},
		{[]string{"--model", "property-value", "--max-regression", "0.1"}, "--max-regression needs --baseline-version"},
		{[]string{"--model", "property-value", "--within", "0.1"}, "--within and --min-within-share go together"},
		{[]string{"--model", "property-value", "--thresholds", "none", "--max-bias-gap", "0.1"}, "needs groupBy"},
		{[]string{"--model", "property-value", "--max-rmse", "1", "-o", "yaml"}, `--output="yaml"`},
		{[]string{"--model", "property-value", "--thresholds", "/nonexistent.yaml"}, "/nonexistent.yaml"},
		{[]string{"--model", "property-value", "--thresholds", "none", "--max-rmse", "1"}, "column property_type: \"house\" is not a finite number (if it is a column of group labels, name it with --group-by)"},
	} {
		if _, err := runValidate(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
