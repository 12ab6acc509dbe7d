package validate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

const shipped = "../../models"

func shippedThresholds(t *testing.T) Thresholds {
	t.Helper()
	th, err := ReadThresholds(filepath.Join(shipped, "property-value", "validate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// The shipped versions pass the shipped gate on their own held-out sets,
// and version 2 against version 1 as baseline.
func TestShippedModelPasses(t *testing.T) {
	for _, o := range []Options{
		{Version: "1"},
		{Version: "2", Baseline: "1"},
		{}, // the default version
	} {
		o.Repository, o.Model, o.Thresholds = shipped, "property-value", shippedThresholds(t)
		r, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Passed || FailedError(r) != nil {
			t.Errorf("version %q: %v", o.Version, FailedError(r))
		}
		if want := 5 + len(o.Baseline)/len("1"); len(r.Checks) != want {
			t.Errorf("version %q: %d checks, want %d: %+v", o.Version, len(r.Checks), want, r.Checks)
		}
	}
}

// writeModel writes a model repository entry with one version.
func writeModel(t *testing.T, repo, name, version string, in, out int, layers []backend.Layer) {
	t.Helper()
	tensors := map[string]model.Tensor{}
	var spec strings.Builder
	for i, l := range layers {
		tensors[fmt.Sprintf("l%d.weight", i)] = model.Tensor{Shape: []int{l.In, l.Out}, Data: l.W}
		tensors[fmt.Sprintf("l%d.bias", i)] = model.Tensor{Shape: []int{l.Out}, Data: l.B}
		fmt.Fprintf(&spec, "- {weights: l%d.weight, bias: l%d.bias, activation: %s}\n", i, i, l.Activation)
	}
	data, err := model.EncodeSafetensors(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(repo, name)
	if err := os.MkdirAll(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("name: %s\nplatform: gpufleet-mlp\ninputs:\n- {name: x, datatype: FP32, shape: [%d]}\noutputs:\n- {name: y, datatype: FP32, shape: [%d]}\nlayers:\n%s", name, in, out, spec.String())
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, version, model.WeightsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// biased is the shipped version 1 with one more hidden unit per layer that
// adds half of (lot - 3 x area), when positive, to the price: houses (lot
// at least three times the area) are valued higher, apartments not at all.
func biased(t *testing.T) []backend.Layer {
	t.Helper()
	models, err := model.Load(shipped, model.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := models["property-value"].Lookup("1")
	out := make([]backend.Layer, len(v.Layers))
	for i, l := range v.Layers {
		in2, out2 := l.In, l.Out+1
		if i > 0 {
			in2 = l.In + 1
		}
		if i == len(v.Layers)-1 {
			out2 = l.Out
		}
		w := make([]float32, in2*out2)
		for r := range l.In {
			copy(w[r*out2:r*out2+l.Out], l.W[r*l.Out:(r+1)*l.Out])
		}
		b := make([]float32, out2)
		copy(b, l.B)
		switch {
		case i == 0: // the new unit: relu(lot - 3 area)
			w[0*out2+l.Out], w[5*out2+l.Out] = -3, 1
		case i < len(v.Layers)-1: // passed on unchanged
			w[l.In*out2+l.Out] = 1
		default: // half of it added to the price
			w[l.In*out2+0] = 0.5
		}
		out[i] = backend.Layer{In: in2, Out: out2, W: w, B: b, Activation: l.Activation}
	}
	return out
}

func TestBiasedModelFailsTheBiasCheck(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "biased", "1", 8, 1, biased(t))
	th := shippedThresholds(t)
	th.Target = []string{"price_kusd"}
	r, err := Run(Options{Repository: repo, Model: "biased", EvalSet: filepath.Join(shipped, "property-value", "1", EvalFile), Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	err = FailedError(r)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "bias_gap") {
		t.Fatalf("the biased model passed the bias check: %v", err)
	}
	g := r.Candidate.Metrics.Groups
	if !(g["house"].MeanError > g["apartment"].MeanError+50) {
		t.Errorf("houses are not over-valued: %+v", g)
	}
}

// A classifier: two outputs that copy the two inputs, so the predicted
// class is the larger input.
func TestClassifier(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "clf", "1", 2, 2, []backend.Layer{{In: 2, Out: 2, W: []float32{1, 0, 0, 1}, B: []float32{0, 0}, Activation: backend.Identity}})
	set := filepath.Join(t.TempDir(), "set.csv")
	// Group a always predicted class 0; group b class 1 three times in four.
	csv := "x0,x1,label,g\n1,0,0,a\n1,0,0,a\n1,0,1,a\n1,0,1,a\n0,1,1,b\n0,1,1,b\n0,1,0,b\n1,0,0,b\n"
	if err := os.WriteFile(set, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	acc, gap := 0.7, 0.5
	r, err := Run(Options{Repository: repo, Model: "clf", EvalSet: set, Thresholds: Thresholds{Target: []string{"label"}, GroupBy: "g", MinAccuracy: &acc, MaxBiasGap: &gap}})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Candidate.Metrics
	if m.Kind != Classification || m.Accuracy != 5.0/8 {
		t.Errorf("kind %s, accuracy %v, want classification, 0.625", m.Kind, m.Accuracy)
	}
	if *m.BiasGap != 0.75 || strings.Join(m.BiasBetween, ",") != "a,b" {
		t.Errorf("bias gap %v between %v, want 0.75 between a and b", *m.BiasGap, m.BiasBetween)
	}
	if err := FailedError(r); err == nil || !strings.Contains(err.Error(), "accuracy 0.625") || !strings.Contains(err.Error(), "bias_gap 0.75") {
		t.Errorf("failed checks: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("x0,x1,label\n1,0,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(Options{Repository: repo, Model: "clf", EvalSet: bad, Thresholds: Thresholds{Target: []string{"label"}, MinAccuracy: &acc}}); err == nil || !strings.Contains(err.Error(), "not a class index") {
		t.Errorf("label 2 of a 2-class model: %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	th := shippedThresholds(t)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Repository: shipped, Model: "nope"}, `no model "nope" (it has property-value)`},
		{Options{Repository: shipped, Model: "property-value", Version: "9"}, `no version "9" (it has 1, 2)`},
		{Options{Repository: shipped, Model: "property-value", Baseline: "9"}, `no version "9"`},
		{Options{Repository: shipped, Model: "property-value", EvalSet: "/nonexistent.csv"}, "/nonexistent.csv"},
		{Options{Repository: "/nonexistent", Model: "property-value"}, "model repository"},
	} {
		tc.o.Thresholds = th
		if _, err := Run(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
	// An evaluation set of the wrong width names its columns.
	set := filepath.Join(t.TempDir(), "narrow.csv")
	if err := os.WriteFile(set, []byte("a,b,price_kusd,property_type\n1,2,3,house\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(Options{Repository: shipped, Model: "property-value", EvalSet: set, Thresholds: th}); err == nil || !strings.Contains(err.Error(), "2 input columns (a, b)") {
		t.Errorf("narrow set: %v", err)
	}
}
