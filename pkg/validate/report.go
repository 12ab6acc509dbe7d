package validate

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the metrics of the candidate (and baseline), the
// groups, and every check with PASS or FAIL.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model %s on %s\n\n", r.Model, r.EvalSet)
	versions := []VersionResult{r.Candidate}
	head := "metric\t" + r.Candidate.Version + " (candidate)"
	if r.Baseline != nil {
		versions = append(versions, *r.Baseline)
		head += "\t" + r.Baseline.Version + " (baseline)"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, f func(Metrics) string) {
		cells := []string{name}
		for _, v := range versions {
			cells = append(cells, f(v.Metrics))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	m := r.Candidate.Metrics
	row("rows", func(m Metrics) string { return fmt.Sprint(m.Rows) })
	if m.Kind == Regression {
		row("rmse", func(m Metrics) string { return fmt.Sprintf("%.4g", m.RMSE) })
		row("mae", func(m Metrics) string { return fmt.Sprintf("%.4g", m.MAE) })
		row("r2", func(m Metrics) string { return fmt.Sprintf("%.4f", m.R2) })
		if m.WithinShare != nil {
			row("within tolerance", func(m Metrics) string { return fmt.Sprintf("%.4f", *m.WithinShare) })
		}
	} else {
		row("accuracy", func(m Metrics) string { return fmt.Sprintf("%.4f", m.Accuracy) })
	}
	if m.BiasGap != nil {
		row("bias gap", func(m Metrics) string {
			return fmt.Sprintf("%.4f (%s)", *m.BiasGap, strings.Join(m.BiasBetween, " vs "))
		})
		groups := make([]string, 0, len(m.Groups))
		for g := range m.Groups {
			groups = append(groups, g)
		}
		slices.Sort(groups)
		for _, g := range groups {
			row("  group "+g, func(m Metrics) string {
				gm := m.Groups[g]
				if m.Kind == Regression {
					return fmt.Sprintf("%d rows, mean error %+.4g, mae %.4g", gm.Rows, gm.MeanError, gm.MAE)
				}
				return fmt.Sprintf("%d rows, accuracy %.4f", gm.Rows, gm.Accuracy)
			})
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "check\tvalue\tlimit\tresult")
	for _, c := range r.Checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		if c.Detail != "" {
			verdict += "  (" + c.Detail + ")"
		}
		fmt.Fprintf(tw, "%s\t%.4g\t%s %.4g\t%s\n", c.Name, c.Value, c.Op, c.Limit, verdict)
	}
	return tw.Flush()
}
