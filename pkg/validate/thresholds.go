package validate

import (
	"errors"
	"fmt"
	"math"
	"os"

	"sigs.k8s.io/yaml"
)

// Thresholds are the checks a version must pass; a nil limit is no check.
// In YAML (strictly decoded: a misspelt field is an error), e.g.
//
//	target: [price_kusd]
//	groupBy: property_type
//	maxRMSE: 45
//	minR2: 0.95
//	within: {tolerance: 0.15, minShare: 0.85}
//	maxBiasGap: 0.1
type Thresholds struct {
	// Target are the label columns of a CSV evaluation set (default: the
	// model's output name).
	Target []string `json:"target,omitempty"`
	// GroupBy is the column whose groups the bias check compares.
	GroupBy string `json:"groupBy,omitempty"`

	MaxRMSE *float64 `json:"maxRMSE,omitempty"`
	MaxMAE  *float64 `json:"maxMAE,omitempty"`
	MinR2   *float64 `json:"minR2,omitempty"`
	// Within checks the share of predictions within a relative tolerance
	// of their target: |prediction - target| <= tolerance x |target|.
	Within *Within `json:"within,omitempty"`
	// MinAccuracy applies to classifiers.
	MinAccuracy *float64 `json:"minAccuracy,omitempty"`
	// MaxBiasGap bounds the largest difference between two groups of
	// GroupBy: of the mean signed error over the mean |target| for
	// regressors (0.1: one group is over- or under-valued by 10 % of the
	// typical target more than another), of the rate of each predicted
	// class for classifiers.
	MaxBiasGap *float64 `json:"maxBiasGap,omitempty"`
	// MaxRegression bounds how much worse than the baseline version the
	// candidate may be: the relative increase of RMSE (regressors) or the
	// absolute loss of accuracy (classifiers).
	MaxRegression *float64 `json:"maxRegression,omitempty"`
}

// Within is the tolerance check.
type Within struct {
	Tolerance float64 `json:"tolerance"`
	MinShare  float64 `json:"minShare"`
}

// ParseThresholds decodes thresholds YAML strictly and validates it.
func ParseThresholds(data []byte) (Thresholds, error) {
	var t Thresholds
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return Thresholds{}, fmt.Errorf("thresholds: %w", err)
	}
	return t, t.Validate()
}

// ReadThresholds reads and parses a thresholds file.
func ReadThresholds(path string) (Thresholds, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Thresholds{}, err
	}
	t, err := ParseThresholds(data)
	if err != nil {
		return Thresholds{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Validate reports every out-of-range limit, naming its field.
func (t Thresholds) Validate() error {
	var errs []error
	nonNeg := func(name string, v *float64) {
		if v != nil && !(*v >= 0 && !math.IsInf(*v, 0)) {
			errs = append(errs, fmt.Errorf("%s: %v must be a finite number >= 0", name, *v))
		}
	}
	share := func(name string, v *float64) {
		if v != nil && !(*v >= 0 && *v <= 1) {
			errs = append(errs, fmt.Errorf("%s: %v must be between 0 and 1", name, *v))
		}
	}
	nonNeg("maxRMSE", t.MaxRMSE)
	nonNeg("maxMAE", t.MaxMAE)
	if t.MinR2 != nil && !(*t.MinR2 <= 1 && !math.IsInf(*t.MinR2, 0)) {
		errs = append(errs, fmt.Errorf("minR2: %v must be a finite number <= 1", *t.MinR2))
	}
	share("minAccuracy", t.MinAccuracy)
	nonNeg("maxBiasGap", t.MaxBiasGap)
	nonNeg("maxRegression", t.MaxRegression)
	if t.Within != nil {
		if !(t.Within.Tolerance > 0 && !math.IsInf(t.Within.Tolerance, 0)) {
			errs = append(errs, fmt.Errorf("within.tolerance: %v must be a finite number > 0", t.Within.Tolerance))
		}
		share("within.minShare", &t.Within.MinShare)
	}
	if t.MaxBiasGap != nil && t.GroupBy == "" {
		errs = append(errs, errors.New("maxBiasGap needs groupBy: the column whose groups to compare"))
	}
	for i, c := range t.Target {
		if c == "" {
			errs = append(errs, fmt.Errorf("target[%d] is empty", i))
		}
	}
	return errors.Join(errs...)
}
