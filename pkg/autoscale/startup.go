package autoscale

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Startup is the time from a pod's creation to its readiness (scheduling,
// image pull, model load), log-normally distributed: Median x
// exp(Spread x N(0,1)), at least one second.
type Startup struct {
	Median time.Duration
	// Spread is the standard deviation of the logarithm (0: always Median;
	// 0.25: about 90 % of starts within 0.66..1.5 x Median).
	Spread float64
}

// Validate returns every problem of the distribution.
func (s Startup) Validate() error {
	var errs []error
	if s.Median < time.Second || s.Median > time.Hour {
		errs = append(errs, fmt.Errorf("start-up median %v: want 1s..1h", s.Median))
	}
	if s.Spread < 0 || s.Spread > 2 {
		errs = append(errs, fmt.Errorf("start-up spread %v: want 0..2", s.Spread))
	}
	return errors.Join(errs...)
}

// sample draws one start-up time in whole seconds.
func (s Startup) sample(r *rand.Rand) int {
	v := s.Median.Seconds()
	if s.Spread > 0 {
		v *= math.Exp(s.Spread * r.NormFloat64())
	}
	return max(1, int(math.Round(v)))
}
