package validate

import (
	"fmt"
	"math"
	"slices"
)

// Kinds of model, told apart by their outputs.
const (
	Regression     = "regression"
	Classification = "classification"
)

// Metrics are a version's figures on an evaluation set.
type Metrics struct {
	Kind string `json:"kind"`
	Rows int    `json:"rows"`
	// Regression.
	RMSE        float64  `json:"rmse,omitempty"`
	MAE         float64  `json:"mae,omitempty"`
	R2          float64  `json:"r2,omitempty"`
	WithinShare *float64 `json:"withinShare,omitempty"`
	// Classification.
	Accuracy float64 `json:"accuracy,omitempty"`
	// Bias, when a group column is set.
	Groups  map[string]GroupMetrics `json:"groups,omitempty"`
	BiasGap *float64                `json:"biasGap,omitempty"`
	// BiasBetween are the two groups whose gap is BiasGap.
	BiasBetween []string `json:"biasBetween,omitempty"`
}

// GroupMetrics are one group's figures.
type GroupMetrics struct {
	Rows int `json:"rows"`
	// MeanError is the mean of prediction - target (regression).
	MeanError float64 `json:"meanError"`
	MAE       float64 `json:"mae,omitempty"`
	// Accuracy and ClassRates (share of rows predicted as each class) are
	// for classifiers.
	Accuracy   float64   `json:"accuracy,omitempty"`
	ClassRates []float64 `json:"classRates,omitempty"`
}

// compute derives the metrics from predictions (rows x out) against the
// set's targets. A model with one output per target column is a regressor;
// one with several outputs and a single target column is a classifier whose
// targets are class indices.
func compute(s *EvalSet, pred []float32, out int, t Thresholds) (Metrics, error) {
	m := Metrics{Rows: s.Rows}
	var groups []string
	if t.GroupBy != "" {
		groups = s.Groups[t.GroupBy]
		if len(groups) != s.Rows {
			return m, fmt.Errorf("the evaluation set has no group column %q", t.GroupBy)
		}
	}
	switch {
	case out == s.TargetWidth:
		m.Kind = Regression
		regression(&m, s, pred, t, groups)
	case s.TargetWidth == 1 && out > 1:
		m.Kind = Classification
		if err := classification(&m, s, pred, out, groups); err != nil {
			return m, err
		}
	default:
		return m, fmt.Errorf("the model has %d outputs and the evaluation set %d target columns: a regressor needs one target column per output, a classifier one column of class indices", out, s.TargetWidth)
	}
	return m, nil
}

func regression(m *Metrics, s *EvalSet, pred []float32, t Thresholds, groups []string) {
	var se, ae, mean, meanAbs float64
	for _, y := range s.Targets {
		mean += y
		meanAbs += math.Abs(y)
	}
	n := float64(len(s.Targets))
	mean /= n
	meanAbs /= n
	var ss float64
	within := 0
	type acc struct{ n, err, abs float64 }
	byGroup := map[string]*acc{}
	for i, y := range s.Targets {
		p := float64(pred[i])
		d := p - y
		se += d * d
		ae += math.Abs(d)
		ss += (y - mean) * (y - mean)
		if t.Within != nil && math.Abs(d) <= t.Within.Tolerance*math.Abs(y) {
			within++
		}
		if groups != nil {
			g := groups[i/s.TargetWidth]
			a := byGroup[g]
			if a == nil {
				a = &acc{}
				byGroup[g] = a
			}
			a.n++
			a.err += d
			a.abs += math.Abs(d)
		}
	}
	m.RMSE = math.Sqrt(se / n)
	m.MAE = ae / n
	m.R2 = 1 - se/math.Max(ss, math.SmallestNonzeroFloat64)
	if t.Within != nil {
		share := float64(within) / n
		m.WithinShare = &share
	}
	if groups == nil {
		return
	}
	m.Groups = map[string]GroupMetrics{}
	for g, a := range byGroup {
		m.Groups[g] = GroupMetrics{Rows: int(a.n) / s.TargetWidth, MeanError: a.err / a.n, MAE: a.abs / a.n}
	}
	gap, between := largestGap(m.Groups, func(g GroupMetrics) []float64 { return []float64{g.MeanError} })
	gap /= math.Max(meanAbs, math.SmallestNonzeroFloat64)
	m.BiasGap, m.BiasBetween = &gap, between
}

func classification(m *Metrics, s *EvalSet, pred []float32, out int, groups []string) error {
	correct := 0
	type acc struct {
		n, correct int
		rates      []float64
	}
	byGroup := map[string]*acc{}
	for i, y := range s.Targets {
		if y != math.Trunc(y) || y < 0 || int(y) >= out {
			return fmt.Errorf("row %d: target %v is not a class index of the model's %d outputs (0..%d)", i+1, y, out, out-1)
		}
		row := pred[i*out : (i+1)*out]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		hit := best == int(y)
		if hit {
			correct++
		}
		if groups != nil {
			a := byGroup[groups[i]]
			if a == nil {
				a = &acc{rates: make([]float64, out)}
				byGroup[groups[i]] = a
			}
			a.n++
			a.rates[best]++
			if hit {
				a.correct++
			}
		}
	}
	m.Accuracy = float64(correct) / float64(len(s.Targets))
	if groups == nil {
		return nil
	}
	m.Groups = map[string]GroupMetrics{}
	for g, a := range byGroup {
		for c := range a.rates {
			a.rates[c] /= float64(a.n)
		}
		m.Groups[g] = GroupMetrics{Rows: a.n, Accuracy: float64(a.correct) / float64(a.n), ClassRates: a.rates}
	}
	gap, between := largestGap(m.Groups, func(g GroupMetrics) []float64 { return g.ClassRates })
	m.BiasGap, m.BiasBetween = &gap, between
	return nil
}

// largestGap is the largest difference of any component of f between two
// groups, and those groups (sorted names; ties: the first pair in name
// order).
func largestGap(groups map[string]GroupMetrics, f func(GroupMetrics) []float64) (float64, []string) {
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	gap, between := 0.0, []string(nil)
	for i, a := range names {
		for _, b := range names[i+1:] {
			fa, fb := f(groups[a]), f(groups[b])
			for k := range fa {
				if d := math.Abs(fa[k] - fb[k]); d > gap {
					gap, between = d, []string{a, b}
				}
			}
		}
	}
	return gap, between
}
