package autoscale

import (
	"fmt"
	"io"
)

// accounting sums one window of a replay.
type accounting struct {
	Window                                         Window
	underReplicaSeconds, overRequests              float64
	replicaSeconds, demandReplicaSeconds           float64
	requests                                       float64
	scaleUps, scaleDowns, podsCreated, podsDeleted int
}

// Totals are a replay's measures over one window of the trace.
type Totals struct {
	Window string `json:"window"`
	From   int    `json:"from_second"`
	To     int    `json:"to_second"`
	// UnderprovisionedReplicaSeconds is the integral of demand (in
	// replicas: rate / capacity) above the ready replicas.
	UnderprovisionedReplicaSeconds float64 `json:"underprovisioned_replica_seconds"`
	// RequestsOverCapacity is the integral of demand above ready capacity
	// (requests that exceed what the ready replicas serve at the latency
	// target).
	RequestsOverCapacity float64 `json:"requests_over_capacity"`
	Requests             float64 `json:"requests"`
	// ReplicaHours counts every pod from creation (starting pods hold
	// their GPUs); GPUHours is that times GPUs per replica.
	ReplicaHours float64 `json:"replica_hours"`
	GPUHours     float64 `json:"gpu_hours"`
	// NeededReplicaHours is the demand's own replica-hours (a perfect
	// autoscaler with fractional replicas).
	NeededReplicaHours float64 `json:"needed_replica_hours"`
	ScaleUps           int     `json:"scale_ups"`
	ScaleDowns         int     `json:"scale_downs"`
	PodsCreated        int     `json:"pods_created"`
	PodsDeleted        int     `json:"pods_deleted"`
}

// Point is one sample of the timeline.
type Point struct {
	Second   int     `json:"t"`
	Needed   float64 `json:"needed"`
	Ready    int     `json:"ready"`
	Replicas int     `json:"replicas"`
}

// SyncRecord is one HPA sync of a replay.
type SyncRecord struct {
	Second            int
	Current, Proposal int32
	Desired           int32
	Observed          float64
	// Forecast is the forecast metric's total (NaN without one).
	Forecast float64
	Ready    int
}

// Result is one replay.
type Result struct {
	Policy   string  `json:"policy"`
	Pipeline string  `json:"pipeline"`
	Target   float64 `json:"target_per_replica"`
	Forecast bool    `json:"forecast"`
	// Totals[0] is the whole trace, then the asked windows.
	Totals    []Totals     `json:"totals"`
	Timeline  []Point      `json:"timeline,omitempty"`
	Decisions []SyncRecord `json:"-"`
}

// Total returns the totals of the named window.
func (r *Result) Total(window string) (Totals, bool) {
	for _, t := range r.Totals {
		if t.Window == window {
			return t, true
		}
	}
	return Totals{}, false
}

func (r *replay) result() *Result {
	res := &Result{Policy: r.p.Name, Pipeline: string(r.p.Pipeline.Kind), Target: r.p.Target, Forecast: r.p.Forecast != nil,
		Timeline: r.timeline, Decisions: r.decisions}
	for _, a := range r.acc {
		rh := a.replicaSeconds / 3600
		res.Totals = append(res.Totals, Totals{
			Window: a.Window.Name, From: a.Window.From, To: a.Window.To,
			UnderprovisionedReplicaSeconds: a.underReplicaSeconds,
			RequestsOverCapacity:           a.overRequests,
			Requests:                       a.requests,
			ReplicaHours:                   rh,
			GPUHours:                       rh * r.m.GPUsPerReplica,
			NeededReplicaHours:             a.demandReplicaSeconds / 3600,
			ScaleUps:                       a.scaleUps, ScaleDowns: a.scaleDowns,
			PodsCreated: a.podsCreated, PodsDeleted: a.podsDeleted,
		})
	}
	return res
}

// WriteText prints one line per window.
func (r *Result) WriteText(w io.Writer) error {
	for _, t := range r.Totals {
		if _, err := fmt.Fprintf(w, "policy=%s window=%s underprov_replica_s=%.0f requests_over_capacity=%.0f (%.3f%%) replica_h=%.1f gpu_h=%.1f needed_replica_h=%.1f scale_ups=%d scale_downs=%d\n",
			r.Policy, t.Window, t.UnderprovisionedReplicaSeconds, t.RequestsOverCapacity, 100*t.RequestsOverCapacity/max(t.Requests, 1e-9),
			t.ReplicaHours, t.GPUHours, t.NeededReplicaHours, t.ScaleUps, t.ScaleDowns); err != nil {
			return err
		}
	}
	return nil
}
