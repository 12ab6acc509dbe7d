package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/validate"
)

// The committed reference model is what the script makes: training is
// deterministic, and nobody edited the weights by hand.
func TestIntegrationCommittedModelIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for a few seconds")
	}
	dir := t.TempDir()
	if err := run(dir, "property-value", "1", 32, 2, 150, 10000, 42, 1, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"1/model.safetensors", "1/README.md", "1/eval.csv", "1/reference.json"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "models", "property-value", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh training run: regenerate it with the command in its README", f)
		}
	}
}

// A candidate trained on a shifted market (every price 30 % higher) fails
// the shipped quality gate on the shipped held-out set, by name.
func TestIntegrationShiftedCandidateFailsTheGate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for a few seconds")
	}
	repo := t.TempDir()
	if err := run(filepath.Join(repo, "property-value"), "property-value", "1", 32, 2, 150, 10000, 42, 1.3, false); err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join("..", "..", "models", "property-value")
	th, err := validate.ReadThresholds(filepath.Join(shipped, "validate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := validate.Run(validate.Options{Repository: repo, Model: "property-value", EvalSet: filepath.Join(shipped, "1", validate.EvalFile), Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	err = validate.FailedError(r)
	if err == nil {
		t.Fatal("the shifted candidate passed the gate")
	}
	for _, check := range []string{"rmse ", "mae ", "within_0.15 "} {
		if !strings.Contains(err.Error(), check) {
			t.Errorf("the failure %q does not name %s", err, check)
		}
	}
}
