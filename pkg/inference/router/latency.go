package router

import (
	"math"
	"sync"
	"time"
)

// latencyDecay is the time constant of a pod's response time average, and
// of its decay while the pod gets no requests: a pod that was slow looks
// fast again after a few of these without traffic, so it is tried again.
const latencyDecay = time.Second

// latency is a pod's response time as a peak-sensitive, time-decaying
// moving average (the cost behind Finagle's and Linkerd's peak-EWMA
// balancers): a response slower than the average replaces it at once; a
// faster one moves it by the weight its distance in time from the previous
// one gives; without responses the value decays toward zero. Outstanding
// requests and queue depth say how loaded a pod is; this says how fast it
// works off its load, so an idle but slow pod (a slower GPU, a long batch
// delay) no longer ties with an idle fast one.
type latency struct {
	mu    sync.Mutex
	value float64 // seconds; 0 before the first response
	stamp time.Time
}

// observe records one response time.
func (l *latency) observe(rtt time.Duration, now time.Time) {
	v := rtt.Seconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.decayed(now)
	switch {
	case l.value == 0 || v > cur:
		l.value = v
	default:
		w := math.Exp(-float64(now.Sub(l.stamp)) / float64(latencyDecay))
		l.value = cur*w + v*(1-w)
	}
	l.stamp = now
}

// at is the average as of now, 0 if never measured.
func (l *latency) at(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.decayed(now)
}

// decayed is the value decayed over the time since the last response; the
// caller holds mu.
func (l *latency) decayed(now time.Time) float64 {
	if l.value == 0 {
		return 0
	}
	idle := now.Sub(l.stamp)
	if idle <= 0 {
		return l.value
	}
	return l.value * math.Exp(-float64(idle)/float64(latencyDecay))
}
