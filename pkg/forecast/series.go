// Package forecast predicts a request rate a few minutes ahead from its own
// history: the short-term trend of the last minutes and, once a day of
// history exists, the daily seasonality (what the rate did from this time
// of day to this time plus the horizon on earlier days).
//
// One implementation serves the metrics adapter's
// requests_per_second_forecast metric and gpusim autoscale's forecast
// policy. History is a fixed ring of per-bucket sums and counts (default
// one-minute buckets over eight days: 11,520 buckets of 6 bytes, 68 KiB
// per series), so memory per series is bounded whatever the traffic; a
// Store bounds the number of series and saves and loads them, so that a
// restart keeps the seasonality learnt.
package forecast

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config sets a series' resolution, memory and model.
type Config struct {
	// Bucket is the history's resolution (1m).
	Bucket time.Duration
	// HistoryDays is how many days of buckets the ring keeps (8, 1..8):
	// seasonality averages over the days it holds, up to 7.
	HistoryDays int
	// TrendWindow is how far back the short-term trend is fitted (10m).
	TrendWindow time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Bucket: time.Minute, HistoryDays: 8, TrendWindow: 10 * time.Minute}
}

// Validate returns every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Bucket < time.Second || c.Bucket > time.Hour || (24*time.Hour)%c.Bucket != 0 {
		errs = append(errs, fmt.Errorf("bucket %v: want 1s..1h dividing a day", c.Bucket))
	}
	if c.HistoryDays < 1 || c.HistoryDays > 8 {
		errs = append(errs, fmt.Errorf("history of %d days: want 1..8", c.HistoryDays))
	}
	if c.TrendWindow < 2*c.Bucket || c.TrendWindow > 6*time.Hour {
		errs = append(errs, fmt.Errorf("trend window %v: want at least two buckets and at most 6h", c.TrendWindow))
	}
	return errors.Join(errs...)
}

// Series is the history of one rate. It is not safe for concurrent use.
type Series struct {
	cfg    Config
	bucket int64 // bucket length in seconds
	// sum and n are per-bucket sums and counts of observations, in a ring
	// indexed by bucket number modulo its length.
	sum []float32
	n   []uint16
	// last is the newest bucket number observed (-1: none); first the
	// oldest still in the ring that was observed.
	last, first int64
}

// NewSeries returns an empty series.
func NewSeries(cfg Config) (*Series, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := int64(cfg.Bucket / time.Second)
	size := int64(cfg.HistoryDays) * 86400 / b
	return &Series{cfg: cfg, bucket: b, sum: make([]float32, size), n: make([]uint16, size), last: -1, first: -1}, nil
}

// Add records an observation of the rate at t (seconds since the Unix
// epoch, or since the start of a simulation). Observations older than the
// newest bucket's ring are dropped; a jump forward clears the buckets it
// skips (a gap, e.g. while the adapter was down, stays empty).
func (s *Series) Add(t int64, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || t < 0 {
		return
	}
	b := floorDiv(t, s.bucket)
	size := int64(len(s.sum))
	switch {
	case s.last < 0:
		s.first, s.last = b, b
	case b > s.last:
		for k := s.last + 1; k <= b && k <= s.last+size; k++ {
			i := k % size
			s.sum[i], s.n[i] = 0, 0
		}
		s.last = b
		if s.first <= b-size {
			s.first = b - size + 1
		}
	case b <= s.last-size:
		return
	}
	if b < s.first {
		s.first = b
	}
	i := b % size
	if s.n[i] == math.MaxUint16 {
		return // a bucket's mean is known well enough
	}
	s.sum[i] += float32(v)
	s.n[i]++
}

// mean is bucket b's mean and whether it has data.
func (s *Series) mean(b int64) (float64, bool) {
	if s.last < 0 || b > s.last || b <= s.last-int64(len(s.sum)) || b < s.first {
		return 0, false
	}
	i := b % int64(len(s.sum))
	if s.n[i] == 0 {
		return 0, false
	}
	return float64(s.sum[i]) / float64(s.n[i]), true
}

// History is how much history the series holds, oldest to newest bucket.
func (s *Series) History() time.Duration {
	if s.last < 0 {
		return 0
	}
	return time.Duration(s.last-s.first+1) * time.Duration(s.bucket) * time.Second
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
