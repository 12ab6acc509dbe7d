package autoscale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Family is one kind of autoscaling setup whose main knob the study
// sweeps: the target per replica, as a fraction of a replica's capacity.
type Family struct {
	Name string
	// Policy returns the family's policy for a target (rate per replica).
	Policy func(target float64) Policy
}

// StudyConfig is the study's protocol.
type StudyConfig struct {
	Model    Model
	Families []Family
	// Utilizations are the swept targets as fractions of ReplicaCapacity.
	Utilizations []float64
	// Split is the fraction of the trace used for tuning; the rest is
	// the evaluation part.
	Split float64
	// Budget is the service level the tuning aims at: under-provisioned
	// replica-seconds at most Budget x the demand's replica-seconds on
	// the tuning part.
	Budget float64
}

// FrontierPoint is one knob value's result on one part of the trace.
type FrontierPoint struct {
	Utilization float64 `json:"utilization"`
	GPUHours    float64 `json:"gpu_hours"`
	Underprov   float64 `json:"underprovisioned_replica_seconds"`
}

// FamilyResult is one family's sweep and tuning.
type FamilyResult struct {
	Name string          `json:"family"`
	Tune []FrontierPoint `json:"tune"`
	Eval []FrontierPoint `json:"eval"`
	// Tuned is the utilization that meets the budget on the tuning part
	// at the fewest GPU-hours (interpolated between swept values), and
	// TunedEval its replay's result on the evaluation part; both are
	// unset when no swept value meets the budget (MeetsBudget false).
	MeetsBudget bool          `json:"meets_budget"`
	Tuned       float64       `json:"tuned_utilization"`
	TunedEval   FrontierPoint `json:"tuned_eval"`
	// AtH is the evaluation frontier's under-provisioning at the study's
	// GPU-hours H; Extrapolated says H was outside the swept range (the
	// nearest end is reported).
	AtH          float64 `json:"underprov_at_h"`
	Extrapolated bool    `json:"extrapolated,omitempty"`
}

// StudyResult is the whole study.
type StudyResult struct {
	Trace      string         `json:"trace"`
	TuneWindow Window         `json:"tune_window"`
	EvalWindow Window         `json:"eval_window"`
	Budget     float64        `json:"budget"`
	Families   []FamilyResult `json:"families"`
	// H is the GPU-hours at which the families are compared: what the
	// first family (the baseline), tuned to the budget, spends on the
	// evaluation part.
	H float64 `json:"gpu_hours"`
}

// Study sweeps each family's knob over the trace, tunes it on the first
// part and compares the families on the rest at equal GPU-hours.
func Study(ctx context.Context, tr *Trace, c StudyConfig) (*StudyResult, error) {
	if len(c.Families) == 0 || len(c.Utilizations) < 2 {
		return nil, errors.New("the study needs families and at least two utilizations")
	}
	if !(c.Split > 0 && c.Split < 1) {
		return nil, fmt.Errorf("split %v: want a fraction in (0, 1)", c.Split)
	}
	if !(c.Budget > 0) {
		return nil, fmt.Errorf("budget %v: want a fraction > 0", c.Budget)
	}
	split := int(float64(tr.Seconds()) * c.Split)
	tune := Window{Name: "tune", From: 0, To: split}
	eval := Window{Name: "eval", From: split, To: tr.Seconds()}
	res := &StudyResult{Trace: tr.Name, TuneWindow: tune, EvalWindow: eval, Budget: c.Budget}
	run := func(f Family, u float64) (FrontierPoint, FrontierPoint, float64, error) {
		r, err := Replay(tr, c.Model, f.Policy(u*c.Model.ReplicaCapacity), ReplayOptions{Windows: []Window{tune, eval}})
		if err != nil {
			return FrontierPoint{}, FrontierPoint{}, 0, err
		}
		t, _ := r.Total("tune")
		e, _ := r.Total("eval")
		return FrontierPoint{u, t.GPUHours, t.UnderprovisionedReplicaSeconds},
			FrontierPoint{u, e.GPUHours, e.UnderprovisionedReplicaSeconds}, t.NeededReplicaHours * 3600, nil
	}
	us := append([]float64(nil), c.Utilizations...)
	sort.Float64s(us)
	for _, f := range c.Families {
		fr := FamilyResult{Name: f.Name}
		var demand float64
		for _, u := range us {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t, e, d, err := run(f, u)
			if err != nil {
				return nil, fmt.Errorf("%s at utilization %v: %w", f.Name, u, err)
			}
			demand = d
			fr.Tune, fr.Eval = append(fr.Tune, t), append(fr.Eval, e)
		}
		if u, ok := tuneToBudget(fr.Tune, c.Budget*demand); ok {
			_, e, _, err := run(f, u)
			if err != nil {
				return nil, err
			}
			fr.MeetsBudget, fr.Tuned, fr.TunedEval = true, u, e
		}
		res.Families = append(res.Families, fr)
	}
	base := res.Families[0]
	if !base.MeetsBudget {
		return nil, fmt.Errorf("%s meets the budget (%.3g of demand) at no swept utilization: sweep lower utilizations or raise the budget", base.Name, c.Budget)
	}
	res.H = base.TunedEval.GPUHours
	for i := range res.Families {
		f := &res.Families[i]
		f.AtH, f.Extrapolated = interpolate(Pareto(f.Eval), res.H)
	}
	return res, nil
}

// tuneToBudget finds the utilization with the fewest GPU-hours whose
// under-provisioning is within budget, interpolating linearly between
// swept values (pts sorted by utilization ascending; under-provisioning
// grows with utilization).
func tuneToBudget(pts []FrontierPoint, budget float64) (float64, bool) {
	best, ok := math.NaN(), false
	for i, p := range pts {
		if p.Underprov <= budget {
			best, ok = p.Utilization, true
			if i+1 < len(pts) && pts[i+1].Underprov > budget {
				q := pts[i+1]
				f := (budget - p.Underprov) / (q.Underprov - p.Underprov)
				best = p.Utilization + f*(q.Utilization-p.Utilization)
			}
		}
	}
	return best, ok
}

// Pareto keeps the points that no cheaper point beats, sorted by GPU-hours.
func Pareto(pts []FrontierPoint) []FrontierPoint {
	s := append([]FrontierPoint(nil), pts...)
	sort.Slice(s, func(i, j int) bool { return s[i].GPUHours < s[j].GPUHours })
	var out []FrontierPoint
	for i := len(s) - 1; i >= 0; i-- {
		if len(out) == 0 || s[i].Underprov > out[len(out)-1].Underprov {
			out = append(out, s[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// interpolate reads a frontier (sorted by GPU-hours) at h, between its
// points log-linearly (linearly where one is 0); outside them it returns
// the nearest end and true.
func interpolate(f []FrontierPoint, h float64) (float64, bool) {
	if len(f) == 0 {
		return math.NaN(), true
	}
	if h <= f[0].GPUHours {
		return f[0].Underprov, h < f[0].GPUHours
	}
	for i := 1; i < len(f); i++ {
		if h <= f[i].GPUHours {
			a, b := f[i-1], f[i]
			x := (h - a.GPUHours) / (b.GPUHours - a.GPUHours)
			if a.Underprov > 0 && b.Underprov > 0 {
				// Under-provisioning falls about exponentially with
				// GPU-hours: interpolate its logarithm.
				return math.Exp(math.Log(a.Underprov) + x*(math.Log(b.Underprov)-math.Log(a.Underprov))), false
			}
			return a.Underprov + x*(b.Underprov-a.Underprov), false
		}
	}
	return f[len(f)-1].Underprov, true
}

// WriteText prints the sweep, the tuned points and, last, the comparison
// line of make bench-autoscale.
func (s *StudyResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trace=%s tune=[%d,%d)s eval=[%d,%d)s budget=%.3g of demand replica-seconds\n",
		s.Trace, s.TuneWindow.From, s.TuneWindow.To, s.EvalWindow.From, s.EvalWindow.To, s.Budget)
	fmt.Fprintf(&b, "%-9s %5s %12s %14s %12s %14s\n", "family", "util", "tune_gpu_h", "tune_underprov", "eval_gpu_h", "eval_underprov")
	for _, f := range s.Families {
		for i := range f.Tune {
			fmt.Fprintf(&b, "%-9s %5.2f %12.1f %14.0f %12.1f %14.0f\n", f.Name, f.Tune[i].Utilization,
				f.Tune[i].GPUHours, f.Tune[i].Underprov, f.Eval[i].GPUHours, f.Eval[i].Underprov)
		}
	}
	for _, f := range s.Families {
		if !f.MeetsBudget {
			fmt.Fprintf(&b, "tuned %-9s meets the budget at no swept utilization\n", f.Name)
			continue
		}
		fmt.Fprintf(&b, "tuned %-9s util=%.3f eval_gpu_h=%.1f eval_underprov=%.0f\n", f.Name, f.Tuned, f.TunedEval.GPUHours, f.TunedEval.Underprov)
	}
	for _, f := range s.Families {
		note := ""
		if f.Extrapolated {
			note = " (H outside the swept range: nearest end)"
		}
		fmt.Fprintf(&b, "at H=%.1f GPU-hours %-9s underprov=%.0f%s\n", s.H, f.Name, f.AtH, note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
