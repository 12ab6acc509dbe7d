package forecast

import (
	"math"
	"time"
)

// Day is the seasonal period.
const Day = 24 * time.Hour

// maxSeasonDays is how many earlier days the seasonal change averages.
const maxSeasonDays = 7

// Predict returns the rate expected over the horizon after t (seconds, the
// clock of Add): the largest, over the buckets up to t+horizon, of
//
//	level + max(trend change, seasonal change)
//
// where level is the mean of the newest bucket with data, the trend change
// the least-squares slope of the last TrendWindow times the lead, and the
// seasonal change (once a day of history exists) the mean over up to seven
// earlier days of how the rate moved from this time of day to the same
// lead later. ok is false when the series has no data in the trend window.
// The value is never negative; callers serving it to an HPA take the
// larger of it and the reactive rate, so a wrong forecast cannot scale
// below what the reactive metric asks for.
func (s *Series) Predict(t int64, horizon time.Duration) (float64, bool) {
	if s.last < 0 {
		return 0, false
	}
	cur := floorDiv(t, s.bucket)
	k := int64(s.cfg.TrendWindow/time.Second) / s.bucket
	level, ok := 0.0, false
	for b := cur; b > cur-k && !ok; b-- {
		level, ok = s.mean(b)
	}
	if !ok {
		return 0, false
	}
	slope, hasTrend := s.slope(cur, k)
	h := int64(horizon / time.Second)
	best := level
	for lead := s.bucket; ; lead += s.bucket {
		if lead > h {
			lead = h
		}
		change := 0.0
		if hasTrend {
			change = slope * float64(lead)
		}
		if sc, ok := s.seasonalChange(t, lead); ok {
			change = math.Max(change, sc)
		}
		best = math.Max(best, level+change)
		if lead >= h {
			break
		}
	}
	return math.Max(best, 0), true
}

// slope is the least-squares slope, per second, of the bucket means of
// buckets (cur-k, cur].
func (s *Series) slope(cur, k int64) (float64, bool) {
	var n, sx, sy, sxx, sxy float64
	for b := cur - k + 1; b <= cur; b++ {
		v, ok := s.mean(b)
		if !ok {
			continue
		}
		x := float64((b - cur) * s.bucket)
		n++
		sx += x
		sy += v
		sxx += x * x
		sxy += x * v
	}
	if n < 3 {
		return 0, false
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, false
	}
	return (n*sxy - sx*sy) / den, true
}

// seasonalChange is the mean over earlier days of mean(t+lead-d) -
// mean(t-d).
func (s *Series) seasonalChange(t, lead int64) (float64, bool) {
	var sum float64
	n := 0
	for d := int64(1); d <= maxSeasonDays; d++ {
		back := d * int64(Day/time.Second)
		from, ok1 := s.mean(floorDiv(t-back, s.bucket))
		to, ok2 := s.mean(floorDiv(t+lead-back, s.bucket))
		if !ok1 || !ok2 {
			continue
		}
		sum += to - from
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}
