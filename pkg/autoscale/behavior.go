package autoscale

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// normalizeDesiredReplicasWithBehaviors ports the function of that name
// (pkg/controller/podautoscaler/horizontal.go): stabilization windows,
// then the scaling policies' rate limits, then min and max.
func (h *HPA) normalizeDesiredReplicasWithBehaviors(now time.Duration, current, desired int32) int32 {
	// maybeInitScaleDownStabilizationWindow
	if h.Behavior.ScaleDown != nil && h.Behavior.ScaleDown.StabilizationWindowSeconds == nil {
		w := int32(h.DownscaleStabilization.Seconds())
		h.Behavior.ScaleDown.StabilizationWindowSeconds = &w
	}
	stabilized := h.stabilizeRecommendationWithBehaviors(now, current, desired)
	return h.convertDesiredReplicasWithBehaviorRate(now, current, stabilized)
}

// stabilizeRecommendationWithBehaviors ports the function of that name:
// the current count, raised to the lowest recommendation of the scale-up
// window and lowered to the highest of the scale-down window.
func (h *HPA) stabilizeRecommendationWithBehaviors(now time.Duration, current, desired int32) int32 {
	up, down := desired, desired
	upCutoff := now - time.Duration(*h.Behavior.ScaleUp.StabilizationWindowSeconds)*time.Second
	downCutoff := now - time.Duration(*h.Behavior.ScaleDown.StabilizationWindowSeconds)*time.Second
	found, oldIdx := false, 0
	for i, r := range h.recommendations {
		if r.at > upCutoff {
			up = min(r.replicas, up)
		}
		if r.at > downCutoff {
			down = max(r.replicas, down)
		}
		if r.at < upCutoff && r.at < downCutoff {
			found, oldIdx = true, i
		}
	}
	rec := current
	if rec < up {
		rec = up
	}
	if rec > down {
		rec = down
	}
	h.record(found, oldIdx, timedValue{desired, now})
	return rec
}

// convertDesiredReplicasWithBehaviorRate ports the function of that name.
func (h *HPA) convertDesiredReplicasWithBehaviorRate(now time.Duration, current, desired int32) int32 {
	switch {
	case desired > current:
		limit := scaleUpLimit(now, current, h.up, h.down, h.Behavior.ScaleUp)
		limit = max(limit, current)
		maxAllowed := min(h.MaxReplicas, limit)
		if desired > maxAllowed {
			return maxAllowed
		}
	case desired < current:
		limit := scaleDownLimit(now, current, h.up, h.down, h.Behavior.ScaleDown)
		limit = min(limit, current)
		minAllowed := max(h.MinReplicas, limit)
		if desired < minAllowed {
			return minAllowed
		}
	}
	return desired
}

// changeInPeriod ports getReplicasChangePerPeriod: the replicas added (or
// removed) by the events of the last periodSeconds.
func changeInPeriod(now time.Duration, periodSeconds int32, events []scaleEvent) int32 {
	cutoff := now - time.Duration(periodSeconds)*time.Second
	var n int32
	for _, e := range events {
		if e.at > cutoff {
			n += e.change
		}
	}
	return n
}

// scaleUpLimit ports calculateScaleUpLimitWithScalingRules.
func scaleUpLimit(now time.Duration, current int32, up, down []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	sel := *rules.SelectPolicy
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	result := int32(math.MinInt32)
	pick := func(a, b int32) int32 { return max(a, b) }
	if sel == autoscalingv2.MinChangePolicySelect {
		result = math.MaxInt32
		pick = func(a, b int32) int32 { return min(a, b) }
	}
	for _, p := range rules.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, up) + changeInPeriod(now, p.PeriodSeconds, down)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit ports calculateScaleDownLimitWithBehaviors.
func scaleDownLimit(now time.Duration, current int32, up, down []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	sel := *rules.SelectPolicy
	if sel == autoscalingv2.DisabledPolicySelect {
		return current
	}
	result := int32(math.MaxInt32)
	pick := func(a, b int32) int32 { return min(a, b) }
	if sel == autoscalingv2.MinChangePolicySelect {
		result = math.MinInt32
		pick = func(a, b int32) int32 { return max(a, b) }
	}
	for _, p := range rules.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, up) + changeInPeriod(now, p.PeriodSeconds, down)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// storeScaleEvent ports the function of that name: events are kept (and
// their slots reused once older than the longest policy period) only when
// the HPA has a behavior.
func (h *HPA) storeScaleEvent(now time.Duration, prev, next int32) {
	if h.Behavior == nil {
		return
	}
	events, rules, change := &h.down, h.Behavior.ScaleDown, prev-next
	if next > prev {
		events, rules, change = &h.up, h.Behavior.ScaleUp, next-prev
	}
	var longest int32
	for _, p := range rules.Policies {
		longest = max(longest, p.PeriodSeconds)
	}
	cutoff := now - time.Duration(longest)*time.Second
	found, idx := false, 0
	for i := range *events {
		if (*events)[i].at < cutoff {
			(*events)[i].outdated = true
		}
		if (*events)[i].outdated {
			found, idx = true, i
		}
	}
	e := scaleEvent{change: change, at: now}
	if found {
		(*events)[idx] = e
	} else {
		*events = append(*events, e)
	}
}
