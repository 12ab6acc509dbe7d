package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	hpav2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2"
)

// HPA is the HorizontalPodAutoscaler controller's decision for one HPA of
// Pods and Object metrics, on a simulated clock.
//
// The controller (k8s.io/kubernetes/pkg/controller/podautoscaler) reads
// time.Now() inside methods of HorizontalController, so it cannot run on a
// simulated clock; this is a port of its decision path, function by
// function (each names the upstream function it ports), checked against
// the upstream code by TestReplicaCalculationMatchesUpstream and
// TestDecisionsMatchUpstreamController.
type HPA struct {
	MinReplicas, MaxReplicas int32
	// Behavior is spec.behavior, defaulted as the API server defaults it;
	// nil takes the controller's legacy path (stabilization over
	// DownscaleStabilization, scale-up limited to max(2x, 4)).
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
	// Tolerance is the controller's --horizontal-pod-autoscaler-tolerance.
	Tolerance float64
	// DownscaleStabilization is the controller's
	// --horizontal-pod-autoscaler-downscale-stabilization.
	DownscaleStabilization time.Duration

	recommendations []timedValue
	up, down        []scaleEvent
}

// Defaults of kube-controller-manager's HPA flags.
const (
	DefaultTolerance              = 0.1
	DefaultDownscaleStabilization = 5 * time.Minute
	DefaultSyncPeriod             = 15 * time.Second
)

type timedValue struct {
	replicas int32
	at       time.Duration
}

type scaleEvent struct {
	change   int32
	at       time.Duration
	outdated bool
}

// NewHPA returns an HPA with the API server's defaults applied to behavior
// (nil stays nil, as it does in the API).
func NewHPA(minReplicas, maxReplicas int32, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior) *HPA {
	h := &HPA{MinReplicas: minReplicas, MaxReplicas: maxReplicas, Tolerance: DefaultTolerance, DownscaleStabilization: DefaultDownscaleStabilization}
	if behavior != nil {
		b := behavior.DeepCopy()
		obj := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Behavior: b}}
		hpav2.SetDefaults_HorizontalPodAutoscalerBehavior(obj)
		h.Behavior = obj.Spec.Behavior
	}
	return h
}

// Validate returns every problem of the spec.
func (h *HPA) Validate() error {
	var errs []error
	if h.MinReplicas < 1 {
		errs = append(errs, fmt.Errorf("minReplicas %d: want at least 1", h.MinReplicas))
	}
	if h.MaxReplicas < h.MinReplicas {
		errs = append(errs, fmt.Errorf("maxReplicas %d is below minReplicas %d", h.MaxReplicas, h.MinReplicas))
	}
	if h.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("tolerance %v: want >= 0", h.Tolerance))
	}
	if b := h.Behavior; b != nil {
		for name, r := range map[string]*autoscalingv2.HPAScalingRules{"scaleUp": b.ScaleUp, "scaleDown": b.ScaleDown} {
			if r == nil {
				continue
			}
			if r.StabilizationWindowSeconds != nil && (*r.StabilizationWindowSeconds < 0 || *r.StabilizationWindowSeconds > 3600) {
				errs = append(errs, fmt.Errorf("behavior.%s.stabilizationWindowSeconds %d: want 0..3600", name, *r.StabilizationWindowSeconds))
			}
			for i, p := range r.Policies {
				if p.Value <= 0 || p.PeriodSeconds <= 0 || p.PeriodSeconds > 1800 {
					errs = append(errs, fmt.Errorf("behavior.%s.policies[%d]: want value > 0 and periodSeconds 1..1800", name, i))
				}
				if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
					errs = append(errs, fmt.Errorf("behavior.%s.policies[%d].type %q: want Pods or Percent", name, i, p.Type))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// tolerances ports HorizontalController.tolerancesForHpa.
func (h *HPA) tolerances() Tolerances {
	t := Tolerances{h.Tolerance, h.Tolerance}
	if b := h.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.Down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.Up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

// Decision is the outcome of one sync.
type Decision struct {
	// Desired is the replica count the HPA writes (Current when it leaves
	// it alone or cannot compute one).
	Desired int32
	// Proposal is the largest metric proposal before stabilization and
	// limits (-1 when no metric was valid).
	Proposal int32
	Err      error
}

// Sync is one reconcile at time now of an HPA whose target has current
// replicas (scale.spec.replicas), with the metrics as read then. It ports
// HorizontalController.reconcileAutoscaler and computeReplicasForMetrics
// for Pods metrics and Object metrics with an AverageValue target
// (scale-to-zero off, its default).
func (h *HPA) Sync(now time.Duration, current int32, metrics []Metric) Decision {
	// recordInitialRecommendation
	if h.recommendations == nil {
		h.recommendations = []timedValue{{current, now}}
	}
	d := Decision{Desired: current, Proposal: -1}
	var desired int32
	switch {
	case current == 0:
		// Scaling is disabled while the target is at zero.
		return d
	case current > h.MaxReplicas:
		desired = h.MaxReplicas
	case current < h.MinReplicas:
		desired = h.MinReplicas
	default:
		proposal, err := h.computeReplicasForMetrics(current, metrics)
		d.Proposal, d.Err = proposal, err
		if proposal == -1 {
			return d
		}
		desired = proposal
		if h.Behavior == nil {
			desired = h.normalizeDesiredReplicas(now, current, desired)
		} else {
			desired = h.normalizeDesiredReplicasWithBehaviors(now, current, desired)
		}
	}
	if desired != current {
		h.storeScaleEvent(now, current, desired)
	}
	d.Desired = desired
	return d
}

// computeReplicasForMetrics ports the function of that name: the largest
// valid proposal; -1 when every metric failed, or when some failed and the
// others would scale down.
func (h *HPA) computeReplicasForMetrics(current int32, metrics []Metric) (int32, error) {
	var replicas int32
	invalid := 0
	var firstErr error
	tol := h.tolerances()
	for _, m := range metrics {
		p, err := m.proposal(current, tol)
		if err != nil {
			if invalid == 0 {
				firstErr = err
			}
			invalid++
			continue
		}
		if replicas == 0 || p > replicas {
			replicas = p
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(metrics), firstErr)
	}
	if invalid >= len(metrics) || (invalid > 0 && replicas < current) {
		return -1, firstErr
	}
	return replicas, firstErr
}

// stabilizeRecommendation ports the legacy (no behavior) stabilization:
// the largest recommendation of the downscale window.
func (h *HPA) stabilizeRecommendation(now time.Duration, desired int32) int32 {
	maxRec := desired
	found, oldIdx := false, 0
	cutoff := now - h.DownscaleStabilization
	for i, r := range h.recommendations {
		if r.at < cutoff {
			found, oldIdx = true, i
		} else if r.replicas > maxRec {
			maxRec = r.replicas
		}
	}
	h.record(found, oldIdx, timedValue{desired, now})
	return maxRec
}

func (h *HPA) record(found bool, idx int, v timedValue) {
	if found {
		h.recommendations[idx] = v
	} else {
		h.recommendations = append(h.recommendations, v)
	}
}

// normalizeDesiredReplicas ports the legacy path: stabilization, then
// convertDesiredReplicasWithRules (min, max, and at most max(2x, 4) up).
func (h *HPA) normalizeDesiredReplicas(now time.Duration, current, desired int32) int32 {
	stabilized := h.stabilizeRecommendation(now, desired)
	scaleUpLimit := int32(math.Max(2.0*float64(current), 4.0))
	maxAllowed := min(h.MaxReplicas, scaleUpLimit)
	switch {
	case stabilized < h.MinReplicas:
		return h.MinReplicas
	case stabilized > maxAllowed:
		return maxAllowed
	}
	return stabilized
}
