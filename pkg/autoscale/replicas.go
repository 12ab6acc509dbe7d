package autoscale

import (
	"errors"
	"math"
)

// Tolerances are the usage-ratio band in which the HPA leaves the replica
// count alone: [1-Down, 1+Up]. The controller's default is 0.1 each
// (--horizontal-pod-autoscaler-tolerance); an HPA may set its own in
// spec.behavior.scaleUp/scaleDown.tolerance (Kubernetes 1.33+).
type Tolerances struct {
	Down, Up float64
}

// within ports Tolerances.isWithin (pkg/controller/podautoscaler/replica_calculator.go).
func (t Tolerances) within(usageRatio float64) bool {
	return 1.0-t.Down <= usageRatio && usageRatio <= 1.0+t.Up
}

// PodsMetric is what the HPA controller reads for one metric of type Pods
// (target type AverageValue): one value per pod, in milli-units, grouped
// as the controller's groupPods does for a metric other than CPU.
type PodsMetric struct {
	// TargetMilli is spec.metrics[].pods.target.averageValue in milli-units.
	TargetMilli int64
	// Values are the values of the running pods that have one.
	Values []int64
	// Unready is the number of Pending pods (their values, if any, are
	// ignored; on a scale-up they count as using nothing).
	Unready int
	// Missing is the number of running pods with no value (on a scale-up
	// they count as using nothing, on a scale-down as using the target).
	Missing int
}

// Metric is one entry of spec.metrics as the controller read it at a sync.
type Metric interface {
	// proposal is the metric's replica count before stabilization.
	proposal(currentReplicas int32, tol Tolerances) (int32, error)
}

var (
	_ Metric = PodsMetric{}
	_ Metric = ObjectMetric{}
)

func (m PodsMetric) proposal(current int32, tol Tolerances) (int32, error) {
	return podsReplicas(m, current, tol)
}

// ObjectMetric is a metric of type Object with an AverageValue target
// (e.g. requests_per_second of the Deployment itself).
type ObjectMetric struct {
	TargetMilli, ValueMilli int64
	// StatusReplicas is the scale's status.replicas (every pod of the
	// target, starting ones included).
	StatusReplicas int32
}

// proposal ports ReplicaCalculator.GetObjectPerPodMetricReplicas.
func (m ObjectMetric) proposal(_ int32, tol Tolerances) (int32, error) {
	replicas := m.StatusReplicas
	ratio := float64(m.ValueMilli) / (float64(m.TargetMilli) * float64(replicas))
	if !tol.within(ratio) {
		replicas = int32(math.Ceil(float64(m.ValueMilli) / float64(m.TargetMilli)))
	}
	return replicas, nil
}

var errNoMetrics = errors.New("did not receive metrics for targeted pods (pods might be unready)")

// usageRatio ports metrics.GetMetricUsageRatio: the integer mean over the
// values, divided by the target.
func usageRatio(values []int64, extraZero, extraTarget int, target int64) (float64, int64) {
	var total int64
	for _, v := range values {
		total += v
	}
	total += int64(extraTarget) * target
	n := int64(len(values) + extraZero + extraTarget)
	usage := total / n
	return float64(usage) / float64(target), usage
}

// podsReplicas ports ReplicaCalculator.calcPlainMetricReplicas
// (pkg/controller/podautoscaler/replica_calculator.go, Kubernetes 1.37):
// the proposal of one Pods metric, before stabilization and limits.
func podsReplicas(m PodsMetric, currentReplicas int32, tol Tolerances) (int32, error) {
	if len(m.Values)+m.Unready+m.Missing == 0 {
		return 0, errors.New("no pods returned by selector while calculating replica count")
	}
	if len(m.Values) == 0 {
		return 0, errNoMetrics
	}
	ratio, _ := usageRatio(m.Values, 0, 0, m.TargetMilli)
	readyPodCount := len(m.Values)
	scaleUpWithUnready := m.Unready > 0 && ratio > 1.0
	if !scaleUpWithUnready && m.Missing == 0 {
		if tol.within(ratio) {
			return currentReplicas, nil
		}
		return int32(math.Ceil(ratio * float64(readyPodCount))), nil
	}
	// Missing pods use the target on a scale-down and nothing on a
	// scale-up (exactly 1.0: neither); unready pods nothing on a scale-up.
	zero, atTarget := 0, 0
	switch {
	case ratio < 1.0:
		atTarget = m.Missing
	case ratio > 1.0:
		zero = m.Missing
	}
	if scaleUpWithUnready {
		zero += m.Unready
	}
	newRatio, _ := usageRatio(m.Values, zero, atTarget, m.TargetMilli)
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return currentReplicas, nil
	}
	counted := len(m.Values) + zero + atTarget
	newReplicas := int32(math.Ceil(newRatio * float64(counted)))
	if (newRatio < 1.0 && newReplicas > currentReplicas) || (newRatio > 1.0 && newReplicas < currentReplicas) {
		return currentReplicas, nil
	}
	return newReplicas, nil
}
