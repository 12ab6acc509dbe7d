package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gpufleet/gpufleet/pkg/validate"
)

// validateOptions are the flags of gpufleet validate. Limits given as flags
// override those of --thresholds.
type validateOptions struct {
	validate.Options
	ThresholdsFile string
	Output         string
	MetricsOnly    bool

	target                                                   []string
	groupBy                                                  string
	maxRMSE, maxMAE, minR2, minAccuracy, maxBias, maxRegress float64
	within, minWithin                                        float64
}

func newValidateCommand() *cobra.Command {
	o := &validateOptions{Output: "table"}
	o.Repository = "models"
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a model version on a labelled evaluation set before it is rolled out (quality and bias gate)",
		Long: `Loads a model version from a model repository with the inference server's own
code, runs a labelled evaluation set through it (CSV with a header, or
safetensors with "inputs" and "targets"; by default the version's eval.csv),
and checks regression metrics (RMSE, MAE, R², the share of predictions within
a relative tolerance) or a classifier's accuracy, a bias gap between the
groups of a column, and, with --baseline-version, how much worse than the
serving version the candidate is. Thresholds come from --thresholds (YAML;
by default the model's own validate.yaml in the repository) and flags
(flags win). Exits 0 when every check passes, 1 naming each
failed check.`,
		Example: `  gpufleet validate --model-repository models --model property-value --thresholds models/property-value/validate.yaml
  gpufleet validate --model property-value --version 2 --baseline-version 1 --max-rmse 45 --max-regression 0.1 -o json
  gpufleet validate --model property-value --eval-set holdout.csv --group-by property_type --max-bias-gap 0.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd.Flags()); err != nil {
				return err
			}
			return o.run(cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Repository, "model-repository", o.Repository, "Model repository: <name>/config.yaml and <name>/<version>/model.safetensors.")
	fs.StringVar(&o.Model, "model", "", "Model to validate (required).")
	fs.StringVar(&o.Version, "version", "", "Candidate version (default: the version the model serves by default).")
	fs.StringVar(&o.Baseline, "baseline-version", "", "Serving version to compare the candidate with, on the same evaluation set.")
	fs.StringVar(&o.EvalSet, "eval-set", "", "Evaluation set, .csv or .safetensors (default: <repository>/<model>/<version>/eval.csv).")
	fs.StringVar(&o.ThresholdsFile, "thresholds", "", "YAML file of thresholds (pkg/validate.Thresholds; strictly decoded); default <repository>/<model>/validate.yaml when it exists; none for no file.")
	fs.StringSliceVar(&o.target, "target", nil, "Label columns of a CSV evaluation set (default: the model's output name).")
	fs.StringVar(&o.groupBy, "group-by", "", "Column whose groups the bias check compares.")
	fs.Float64Var(&o.maxRMSE, "max-rmse", 0, "Largest RMSE allowed.")
	fs.Float64Var(&o.maxMAE, "max-mae", 0, "Largest MAE allowed.")
	fs.Float64Var(&o.minR2, "min-r2", 0, "Smallest R² allowed.")
	fs.Float64Var(&o.within, "within", 0, "Relative tolerance of the within check, e.g. 0.15 (with --min-within-share).")
	fs.Float64Var(&o.minWithin, "min-within-share", 0, "Smallest share of predictions within --within of their target.")
	fs.Float64Var(&o.minAccuracy, "min-accuracy", 0, "Smallest accuracy allowed (classifiers).")
	fs.Float64Var(&o.maxBias, "max-bias-gap", 0, "Largest gap between two groups of --group-by: of the mean error over the mean |target| (regressors), of a class's prediction rate (classifiers).")
	fs.Float64Var(&o.maxRegress, "max-regression", 0, "With --baseline-version: largest relative RMSE increase (regressors) or accuracy loss (classifiers).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "table or json.")
	fs.BoolVar(&o.MetricsOnly, "metrics-only", false, "Print the metrics without any threshold (exit 0 unless they cannot be computed).")
	return cmd
}

// complete merges the thresholds file and the flags that were set.
func (o *validateOptions) complete(fs *pflag.FlagSet) error {
	var errs []error
	if o.Model == "" {
		errs = append(errs, errors.New("--model is required"))
	}
	if o.Output != "table" && o.Output != "json" {
		errs = append(errs, fmt.Errorf("--output=%q: want table or json", o.Output))
	}
	if !fs.Changed("thresholds") && o.Model != "" {
		// The repository's own gate for the model, when it ships one.
		if p := filepath.Join(o.Repository, o.Model, validate.ThresholdsFile); fileExists(p) {
			o.ThresholdsFile = p
		}
	}
	if o.ThresholdsFile == "none" {
		o.ThresholdsFile = ""
	}
	if o.ThresholdsFile != "" {
		t, err := validate.ReadThresholds(o.ThresholdsFile)
		if err != nil {
			errs = append(errs, err)
		}
		o.Thresholds = t
	}
	t := &o.Thresholds
	set := func(name string, dst **float64, v float64) {
		if fs.Changed(name) {
			*dst = &v
		}
	}
	set("max-rmse", &t.MaxRMSE, o.maxRMSE)
	set("max-mae", &t.MaxMAE, o.maxMAE)
	set("min-r2", &t.MinR2, o.minR2)
	set("min-accuracy", &t.MinAccuracy, o.minAccuracy)
	set("max-bias-gap", &t.MaxBiasGap, o.maxBias)
	set("max-regression", &t.MaxRegression, o.maxRegress)
	if fs.Changed("within") != fs.Changed("min-within-share") {
		errs = append(errs, errors.New("--within and --min-within-share go together"))
	} else if fs.Changed("within") {
		t.Within = &validate.Within{Tolerance: o.within, MinShare: o.minWithin}
	}
	if fs.Changed("target") {
		t.Target = o.target
	}
	if fs.Changed("group-by") {
		t.GroupBy = o.groupBy
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !t.HasChecks() && !o.MetricsOnly && len(errs) == 0 {
		errs = append(errs, errors.New("no threshold given: pass --thresholds FILE or limits such as --max-rmse, or --metrics-only to print the metrics"))
	}
	if fs.Changed("max-regression") && o.Baseline == "" {
		errs = append(errs, errors.New("--max-regression needs --baseline-version"))
	}
	return errors.Join(errs...)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func (o *validateOptions) run(w io.Writer) error {
	r, err := validate.Run(o.Options)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := validate.WriteTable(w, r); err != nil {
		return err
	}
	if o.MetricsOnly {
		return nil
	}
	return validate.FailedError(r)
}
