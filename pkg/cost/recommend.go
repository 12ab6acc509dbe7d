package cost

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// RecommendationKind says what a recommendation is about.
type RecommendationKind string

// Recommendation kinds.
const (
	// RecommendFractionalGPU: a workload uses a fraction of its GPUs.
	RecommendFractionalGPU RecommendationKind = "fractional-gpu"
	// RecommendFewerReplicas: a serving workload's replicas are mostly idle.
	RecommendFewerReplicas RecommendationKind = "fewer-replicas"
	// RecommendSpot: a batch workload runs on on-demand GPUs.
	RecommendSpot RecommendationKind = "spot"
	// RecommendConsolidate: a node's free GPU capacity is split into slivers.
	RecommendConsolidate RecommendationKind = "consolidate"
)

// Recommendation is one suggested change, with the figure that triggered it.
type Recommendation struct {
	Kind RecommendationKind `json:"kind"`
	// Target is what to change: namespace/Kind/name of a workload or
	// node/NAME.
	Target string `json:"target"`
	// Figure is the measurement that triggered it, e.g. "22% GPU
	// utilization".
	Figure string `json:"figure"`
	// Message says what to do and why, in one sentence.
	Message string `json:"message"`
	// Savings is the estimated cost saved over the report's range, when
	// priced.
	Savings *float64 `json:"savings,omitempty"`
}

// Defaults of RecommendOptions.
const (
	DefaultMinUtilization        = 0.30
	DefaultMinRequestsPerReplica = 10
	DefaultHeadroom              = 0.20
	DefaultMinEvidenceSeconds    = 900
)

// RecommendOptions are the thresholds of the recommendations. Zero fields
// take their defaults.
type RecommendOptions struct {
	// MinUtilization: a workload using less of its GPUs is offered a
	// fractional GPU (default 0.30).
	MinUtilization float64
	// MinRequestsPerReplica: a Deployment or StatefulSet serving fewer
	// requests per second per replica is offered fewer replicas (default 10).
	MinRequestsPerReplica float64
	// Headroom is added to a workload's peak use to size its share
	// (default 0.20, i.e. 20 %).
	Headroom float64
	// MinEvidenceSeconds is the observed GPU-seconds (or, for request
	// rates, pod-seconds) a workload needs before it is judged (default 900).
	MinEvidenceSeconds float64
}

func (o RecommendOptions) withDefaults() RecommendOptions {
	if o.MinUtilization == 0 {
		o.MinUtilization = DefaultMinUtilization
	}
	if o.MinRequestsPerReplica == 0 {
		o.MinRequestsPerReplica = DefaultMinRequestsPerReplica
	}
	if o.Headroom == 0 {
		o.Headroom = DefaultHeadroom
	}
	if o.MinEvidenceSeconds == 0 {
		o.MinEvidenceSeconds = DefaultMinEvidenceSeconds
	}
	return o
}

func (o RecommendOptions) validate() error {
	var errs []error
	if !finite(o.MinUtilization) || o.MinUtilization < 0 || o.MinUtilization > 1 {
		errs = append(errs, fmt.Errorf("minimum utilization %v: must be between 0 and 1", o.MinUtilization))
	}
	if !finite(o.MinRequestsPerReplica) || o.MinRequestsPerReplica < 0 {
		errs = append(errs, fmt.Errorf("minimum requests per replica %v: must be 0 or more", o.MinRequestsPerReplica))
	}
	if !finite(o.Headroom) || o.Headroom < 0 || o.Headroom > 10 {
		errs = append(errs, fmt.Errorf("headroom %v: must be between 0 and 10", o.Headroom))
	}
	if !finite(o.MinEvidenceSeconds) || o.MinEvidenceSeconds < 0 {
		errs = append(errs, fmt.Errorf("minimum evidence %v s: must be 0 or more", o.MinEvidenceSeconds))
	}
	return errors.Join(errs...)
}

// workloadUse is a workload's accounted time over all its nodes.
type workloadUse struct {
	ref  WorkloadRef
	acc  Accum
	cost float64
	// byModel is its on-demand GPU time per model (for the spot advice).
	onDemand map[string]float64
}

// recommend derives the recommendations from u.
func recommend(u Usage, pr *pricer, o RecommendOptions) []Recommendation {
	workloads := map[WorkloadRef]*workloadUse{}
	for _, e := range u.Entries {
		w := workloads[e.WorkloadRef()]
		if w == nil {
			w = &workloadUse{ref: e.WorkloadRef(), onDemand: map[string]float64{}}
			workloads[w.ref] = w
		}
		w.acc.add(e.Accum)
		w.cost += pr.cost(e.Model, e.Spot, e.AllocatedGPUSeconds)
		if !e.Spot {
			w.onDemand[e.Model] += e.AllocatedGPUSeconds
		}
	}
	peaks := map[WorkloadRef]float64{}
	for _, p := range u.Peaks {
		peaks[p.WorkloadRef] = p.P95UsedGPUsPerReplica
	}
	var out []Recommendation
	refs := slices.SortedFunc(maps.Keys(workloads), func(a, b WorkloadRef) int { return cmp.Compare(a.String(), b.String()) })
	for _, ref := range refs {
		w := workloads[ref]
		if r, ok := recommendShare(w, peaks, pr, o); ok {
			out = append(out, r)
		}
		if r, ok := recommendReplicas(w, u.WindowSeconds(), o); ok {
			out = append(out, r)
		}
		out = append(out, recommendSpot(w, pr)...)
	}
	for _, n := range u.GPUs {
		if r, ok := recommendConsolidation(n); ok {
			out = append(out, r)
		}
	}
	return out
}

// recommendShare: a workload below MinUtilization gets a share sized to
// its use: the 95th percentile of its per-minute use per replica (or the
// mean, when unknown) plus Headroom, rounded up to 100 milli.
func recommendShare(w *workloadUse, peaks map[WorkloadRef]float64, pr *pricer, o RecommendOptions) (Recommendation, bool) {
	a := w.acc
	if a.AllocatedObservedGPUSeconds < o.MinEvidenceSeconds || a.PodSeconds <= 0 {
		return Recommendation{}, false
	}
	util := a.UsedGPUSeconds / a.AllocatedObservedGPUSeconds
	if util >= o.MinUtilization {
		return Recommendation{}, false
	}
	perReplica := a.AllocatedGPUSeconds / a.PodSeconds
	use, basis := util*perReplica, "mean"
	if p, ok := peaks[w.ref]; ok {
		use, basis = p, "p95"
	}
	milli := roundUpMilli(use * (1 + o.Headroom))
	if float64(milli) >= perReplica*1000-0.5 {
		return Recommendation{}, false
	}
	figure := fmt.Sprintf("%.0f%% GPU utilization", util*100)
	var change string
	if milli < 1000 {
		change = fmt.Sprintf("a %d-milli share (%s: %d) would fit its use", milli, "gpufleet.io/gpu-milli", milli)
	} else {
		whole := (milli + 999) / 1000
		if float64(whole) >= perReplica-0.001 {
			return Recommendation{}, false
		}
		milli = whole * 1000
		change = fmt.Sprintf("%d whole GPU(s) per replica would fit its use", whole)
	}
	r := Recommendation{
		Kind:   RecommendFractionalGPU,
		Target: w.ref.String(),
		Figure: figure,
	}
	msg := fmt.Sprintf("%s: %s on %s GPU per replica over %.1f GPU-h -> %s (%s %.2f GPU per replica + %.0f%% headroom)",
		w.ref, figure, trimFloat(perReplica), a.AllocatedGPUSeconds/secondsPerHour, change, basis, use, o.Headroom*100)
	if pr.prices != nil && w.cost > 0 {
		saved := w.cost * (1 - float64(milli)/1000/perReplica)
		r.Savings = &saved
		msg += fmt.Sprintf("; it would have cost %s instead of %s", money(pr, w.cost-saved), money(pr, w.cost))
	}
	r.Message = msg
	return r, true
}

// roundUpMilli rounds GPUs up to a multiple of 100 milli, at least 100.
func roundUpMilli(gpus float64) int64 {
	hundreds := math.Ceil(gpus*10 - 1e-9)
	return max(100, int64(hundreds)*100)
}

// recommendReplicas: a Deployment or StatefulSet serving fewer than
// MinRequestsPerReplica per replica, with more than one replica on average.
func recommendReplicas(w *workloadUse, window float64, o RecommendOptions) (Recommendation, bool) {
	a := w.acc
	if (w.ref.Kind != KindDeployment && w.ref.Kind != KindStatefulSet) ||
		a.RequestsObservedSeconds < o.MinEvidenceSeconds || window <= 0 {
		return Recommendation{}, false
	}
	rps := a.Requests / a.RequestsObservedSeconds
	replicas := a.PodSeconds / window
	if rps >= o.MinRequestsPerReplica || replicas <= 1 {
		return Recommendation{}, false
	}
	enough := max(1, math.Ceil(rps*replicas/o.MinRequestsPerReplica))
	if enough >= math.Round(replicas) {
		return Recommendation{}, false
	}
	figure := fmt.Sprintf("%.1f requests/s per replica", rps)
	return Recommendation{
		Kind:   RecommendFewerReplicas,
		Target: w.ref.String(),
		Figure: figure,
		Message: fmt.Sprintf("%s: %s over %.1f replicas on average (below %s) -> fewer replicas (%.0f would serve it at %s/s each) or a lower HPA minReplicas",
			w.ref, figure, replicas, trimFloat(o.MinRequestsPerReplica), enough, trimFloat(o.MinRequestsPerReplica)),
	}, true
}

// recommendSpot: a Job on on-demand GPUs, per GPU model, when the table
// prices spot lower.
func recommendSpot(w *workloadUse, pr *pricer) []Recommendation {
	if w.ref.Kind != KindJob {
		return nil
	}
	var out []Recommendation
	for _, model := range slices.Sorted(maps.Keys(w.onDemand)) {
		secs := w.onDemand[model]
		if secs <= 0 {
			continue
		}
		hours := secs / secondsPerHour
		figure := fmt.Sprintf("%.1f GPU-h on on-demand %s", hours, orUnknown(model))
		r := Recommendation{Kind: RecommendSpot, Target: w.ref.String(), Figure: figure}
		target := fmt.Sprintf("Job %s/%s", w.ref.Namespace, w.ref.Name)
		if pr.prices == nil {
			r.Message = fmt.Sprintf("%s on on-demand %s (%.1f GPU-h) -> spot capacity (a batch job can be retried)", target, orUnknown(model), hours)
			out = append(out, r)
			continue
		}
		onDemand, ok1 := pr.prices.Lookup(model, false)
		spot, ok2 := pr.prices.Lookup(model, true)
		if !ok1 || !ok2 || spot >= onDemand {
			continue
		}
		saved := (onDemand - spot) * hours
		r.Savings = &saved
		r.Message = fmt.Sprintf("%s on on-demand %s (%.1f GPU-h, %s) -> spot would cost %s",
			target, orUnknown(model), hours, money(pr, onDemand*hours), money(pr, spot*hours))
		out = append(out, r)
	}
	return out
}

// recommendConsolidation: a node whose partly used GPUs could be packed
// onto fewer GPUs, freeing whole ones. Each GPU's shares move together
// (first fit decreasing over per-GPU totals), so the count is one the
// scheduler can reach by rescheduling the pods of whole GPUs.
func recommendConsolidation(n NodeAllocation) (Recommendation, bool) {
	var partial []int64
	var free int64
	wholeFree := 0
	for _, m := range n.PerGPUAllocatedMilli {
		m = min(max(m, 0), 1000)
		switch {
		case m == 0:
			wholeFree++
		case m < 1000:
			partial = append(partial, m)
			free += 1000 - m
		}
	}
	needed := binsNeeded(partial)
	freed := len(partial) - needed
	if freed < 1 {
		return Recommendation{}, false
	}
	figure := fmt.Sprintf("%.1f GPUs free in slivers across %d GPUs", float64(free)/1000, len(partial))
	return Recommendation{
		Kind:   RecommendConsolidate,
		Target: "node/" + n.Node,
		Figure: figure,
		Message: fmt.Sprintf("node %s has %s (%d whole %s free); consolidating its shares onto %d %s would free %d whole %s",
			n.Node, figure, wholeFree, plural(wholeFree, "GPU", "GPUs"), needed, plural(needed, "GPU", "GPUs"), freed, plural(freed, "GPU", "GPUs")),
	}, true
}

// binsNeeded packs milli-GPU items into GPUs of 1000, first fit decreasing.
func binsNeeded(items []int64) int {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b int64) int { return cmp.Compare(b, a) })
	var bins []int64
	for _, it := range sorted {
		placed := false
		for i := range bins {
			if bins[i]+it <= 1000 {
				bins[i] += it
				placed = true
				break
			}
		}
		if !placed {
			bins = append(bins, it)
		}
	}
	return len(bins)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// money formats an amount in the price table's currency: $ for USD.
func money(pr *pricer, v float64) string {
	if pr.prices == nil || pr.prices.Currency == DefaultCurrency {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("%.2f %s", v, pr.prices.Currency)
}

// trimFloat prints v with up to two decimals and at least one: 1.0, 0.25.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}
