package demo

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Schedule is the load of a replay: a target request rate for each step of
// replay time, the whole trace compressed into the replay.
type Schedule struct {
	// Step is how long each rate holds.
	Step time.Duration
	// Rates are requests per second, one per step.
	Rates []float64
	// Speed is how many seconds of the trace each second of the replay
	// covers.
	Speed float64
}

// Compress maps the whole trace onto duration of replay time, in steps of
// step (duration is rounded to whole steps, at least one): each step's rate
// is the time-weighted mean of the trace's window rates over the part of
// the trace the step covers, and every rate is scaled so that the highest
// step's is peak requests per second. Averaging, not sampling, keeps the
// load's volume: the replay sends the trace's requests, scaled.
func Compress(t Trace, duration, step time.Duration, peak float64) (Schedule, error) {
	var errs []error
	if len(t.Rates) == 0 || t.Period <= 0 {
		errs = append(errs, errors.New("empty trace"))
	}
	if step <= 0 || duration <= 0 {
		errs = append(errs, fmt.Errorf("replay duration %v and step %v must be positive", duration, step))
	}
	if !(peak > 0) || math.IsInf(peak, 0) {
		errs = append(errs, fmt.Errorf("peak rate %v: must be a positive number", peak))
	}
	if len(errs) > 0 {
		return Schedule{}, errors.Join(errs...)
	}
	n := max(1, int(math.Round(float64(duration)/float64(step))))
	period := t.Period.Seconds()
	span := t.Duration().Seconds() / float64(n) // trace seconds per step
	rates := make([]float64, n)
	highest := 0.0
	for i := range rates {
		a, b := float64(i)*span, float64(i+1)*span
		sum := 0.0
		for k := int(a / period); k < len(t.Rates) && float64(k)*period < b; k++ {
			lo, hi := math.Max(a, float64(k)*period), math.Min(b, float64(k+1)*period)
			if hi > lo {
				sum += t.Rates[k] * (hi - lo)
			}
		}
		rates[i] = sum / span
		highest = math.Max(highest, rates[i])
	}
	if highest == 0 {
		return Schedule{}, errors.New("the trace has no requests: every rate is 0")
	}
	for i := range rates {
		rates[i] *= peak / highest
	}
	return Schedule{Step: step, Rates: rates, Speed: span / step.Seconds()}, nil
}

// Duration is the replay's length.
func (s Schedule) Duration() time.Duration { return time.Duration(len(s.Rates)) * s.Step }

// RateAt is the target rate at elapsed into the replay: the rate of the
// step elapsed falls in, 0 before the start and from the end on.
func (s Schedule) RateAt(elapsed time.Duration) float64 {
	if elapsed < 0 || elapsed >= s.Duration() {
		return 0
	}
	return s.Rates[int(elapsed/s.Step)]
}

// TraceOffset is the point of the trace that elapsed into the replay
// stands for.
func (s Schedule) TraceOffset(elapsed time.Duration) time.Duration {
	return time.Duration(float64(elapsed) * s.Speed)
}

// Peak is the highest target rate.
func (s Schedule) Peak() float64 {
	p := 0.0
	for _, r := range s.Rates {
		p = math.Max(p, r)
	}
	return p
}

// Mean is the mean target rate over the replay.
func (s Schedule) Mean() float64 {
	sum := 0.0
	for _, r := range s.Rates {
		sum += r
	}
	return sum / float64(len(s.Rates))
}
