package validate

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// EvalFile is the evaluation set a version ships beside its weights.
const EvalFile = "eval.csv"

// ThresholdsFile is the gate a model ships in its repository directory.
const ThresholdsFile = "validate.yaml"

// Options say what to validate.
type Options struct {
	Repository string
	Model      string
	// Version is the candidate ("" : the version the model serves by
	// default).
	Version string
	// Baseline, if set, is evaluated on the same set and compared.
	Baseline string
	// EvalSet is the evaluation set ("": the candidate's eval.csv).
	EvalSet    string
	Thresholds Thresholds
}

// VersionResult is one version's metrics.
type VersionResult struct {
	Version string  `json:"version"`
	Metrics Metrics `json:"metrics"`
}

// Check is one threshold against its value.
type Check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Op is "<=" or ">="; Limit the threshold.
	Op    string  `json:"op"`
	Limit float64 `json:"limit"`
	Pass  bool    `json:"pass"`
	// Detail says more where a value alone does not (which groups).
	Detail string `json:"detail,omitempty"`
}

// Result is the outcome of a validation.
type Result struct {
	Model     string         `json:"model"`
	EvalSet   string         `json:"evalSet"`
	Candidate VersionResult  `json:"candidate"`
	Baseline  *VersionResult `json:"baseline,omitempty"`
	Checks    []Check        `json:"checks"`
	Passed    bool           `json:"passed"`
}

// Failed names the checks that failed.
func (r *Result) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Pass {
			out = append(out, fmt.Sprintf("%s %.4g (want %s %.4g)", c.Name, c.Value, c.Op, c.Limit))
		}
	}
	return out
}

// HasChecks says whether t checks anything.
func (t Thresholds) HasChecks() bool {
	return t.MaxRMSE != nil || t.MaxMAE != nil || t.MinR2 != nil || t.Within != nil || t.MinAccuracy != nil || t.MaxBiasGap != nil || t.MaxRegression != nil
}

// Run loads the model's versions the way the inference server does, runs
// the evaluation set through each on the CPU backend, and checks the
// thresholds. An error means nothing could be checked; failed checks are
// in the Result.
func Run(o Options) (*Result, error) {
	if err := o.Thresholds.Validate(); err != nil {
		return nil, err
	}
	models, err := model.Load(o.Repository, model.Defaults{})
	if err != nil {
		return nil, err
	}
	m, ok := models[o.Model]
	if !ok {
		names := make([]string, 0, len(models))
		for n := range models {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("model repository %s has no model %q (it has %s)", o.Repository, o.Model, strings.Join(names, ", "))
	}
	cand, err := version(m, o.Version)
	if err != nil {
		return nil, err
	}
	evalPath := o.EvalSet
	if evalPath == "" {
		evalPath = filepath.Join(o.Repository, o.Model, cand.Version, EvalFile)
	}
	targets := o.Thresholds.Target
	if len(targets) == 0 {
		targets = []string{m.Outputs[0].Name}
	}
	var groups []string
	if o.Thresholds.GroupBy != "" {
		groups = []string{o.Thresholds.GroupBy}
	}
	set, err := ReadEvalSet(evalPath, targets, groups)
	if err != nil {
		return nil, err
	}
	r := &Result{Model: m.Name, EvalSet: evalPath}
	if r.Candidate, err = evaluate(cand, set, o.Thresholds); err != nil {
		return nil, err
	}
	if o.Baseline != "" {
		base, err := version(m, o.Baseline)
		if err != nil {
			return nil, err
		}
		b, err := evaluate(base, set, o.Thresholds)
		if err != nil {
			return nil, err
		}
		r.Baseline = &b
	}
	r.Checks = checks(r, o.Thresholds)
	r.Passed = !slices.ContainsFunc(r.Checks, func(c Check) bool { return !c.Pass })
	return r, nil
}

func version(m *model.Model, v string) (*model.Version, error) {
	if v == "" {
		return m.Default, nil
	}
	ver, ok := m.Lookup(v)
	if !ok {
		var have []string
		for _, x := range m.Versions {
			have = append(have, x.Version)
		}
		return nil, fmt.Errorf("model %s has no version %q (it has %s)", m.Name, v, strings.Join(have, ", "))
	}
	return ver, nil
}

// batchRows bounds one Forward call.
const batchRows = 1024

func evaluate(v *model.Version, s *EvalSet, t Thresholds) (VersionResult, error) {
	if s.Width != v.In {
		return VersionResult{}, fmt.Errorf("the evaluation set has %d input columns (%s), model %s version %s takes %d",
			s.Width, strings.Join(s.Features, ", "), v.Model, v.Version, v.In)
	}
	be := cpu.New()
	defer be.Close()
	mod, err := be.Load(v.Layers)
	if err != nil {
		return VersionResult{}, fmt.Errorf("loading model %s version %s: %w", v.Model, v.Version, err)
	}
	defer mod.Close()
	pred := make([]float32, 0, s.Rows*v.Out)
	for start := 0; start < s.Rows; start += batchRows {
		n := min(batchRows, s.Rows-start)
		out, err := mod.Forward(s.Inputs[start*s.Width:(start+n)*s.Width], n)
		if err != nil {
			return VersionResult{}, fmt.Errorf("model %s version %s: %w", v.Model, v.Version, err)
		}
		pred = append(pred, out...)
	}
	m, err := compute(s, pred, v.Out, t)
	if err != nil {
		return VersionResult{}, fmt.Errorf("model %s version %s: %w", v.Model, v.Version, err)
	}
	return VersionResult{Version: v.Version, Metrics: m}, nil
}

// checks compares the candidate (and baseline) with the thresholds.
func checks(r *Result, t Thresholds) []Check {
	m := r.Candidate.Metrics
	var out []Check
	atMost := func(name string, v float64, limit *float64, detail string) {
		if limit != nil {
			out = append(out, Check{Name: name, Value: v, Op: "<=", Limit: *limit, Pass: v <= *limit, Detail: detail})
		}
	}
	atLeast := func(name string, v float64, limit *float64) {
		if limit != nil {
			out = append(out, Check{Name: name, Value: v, Op: ">=", Limit: *limit, Pass: v >= *limit})
		}
	}
	switch m.Kind {
	case Regression:
		atMost("rmse", m.RMSE, t.MaxRMSE, "")
		atMost("mae", m.MAE, t.MaxMAE, "")
		atLeast("r2", m.R2, t.MinR2)
		if t.Within != nil && m.WithinShare != nil {
			atLeast(fmt.Sprintf("within_%g", t.Within.Tolerance), *m.WithinShare, &t.Within.MinShare)
		}
	case Classification:
		atLeast("accuracy", m.Accuracy, t.MinAccuracy)
	}
	if t.MaxBiasGap != nil && m.BiasGap != nil {
		atMost("bias_gap", *m.BiasGap, t.MaxBiasGap, fmt.Sprintf("%s groups %s", t.GroupBy, strings.Join(m.BiasBetween, " vs ")))
	}
	if r.Baseline != nil && t.MaxRegression != nil {
		b := r.Baseline.Metrics
		switch m.Kind {
		case Regression:
			rel := (m.RMSE - b.RMSE) / max(b.RMSE, 1e-12)
			atMost("rmse_increase_vs_"+r.Baseline.Version, rel, t.MaxRegression, fmt.Sprintf("RMSE %.4g vs %.4g", m.RMSE, b.RMSE))
		case Classification:
			atMost("accuracy_loss_vs_"+r.Baseline.Version, b.Accuracy-m.Accuracy, t.MaxRegression, fmt.Sprintf("accuracy %.4g vs %.4g", m.Accuracy, b.Accuracy))
		}
	}
	return out
}

// ErrFailed is wrapped by FailedError.
var ErrFailed = errors.New("validation failed")

// FailedError is the error of a validation whose checks failed: it names
// every failed check.
func FailedError(r *Result) error {
	if r.Passed {
		return nil
	}
	return fmt.Errorf("%w: model %s version %s: %s", ErrFailed, r.Model, r.Candidate.Version, strings.Join(r.Failed(), "; "))
}
