package router

import (
	"math"
	"sync"
	"time"
)

// tokenBucket admits RequestsPerSecond on average and Burst at once. One
// mutex makes it exact under any concurrency: N concurrent takes on a full
// bucket of B tokens admit exactly min(N, B).
type tokenBucket struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(l RateLimit, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: l.RequestsPerSecond, burst: float64(l.Burst), now: now, tokens: float64(l.Burst), last: now()}
}

// take takes one token. Refused, it says how long until one is there.
func (b *tokenBucket) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// retryAfterSeconds is the Retry-After header value for a wait: whole
// seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// retryBudget bounds retries to a share of requests, so that a fleet that
// refuses everything is not hit with every request several times: each
// request deposits ratio of a token, each retry spends one; the balance is
// capped at max and starts full.
type retryBudget struct {
	ratio, max float64

	mu      sync.Mutex
	balance float64
}

func newRetryBudget(ratio float64, maxTokens int) *retryBudget {
	return &retryBudget{ratio: ratio, max: float64(maxTokens), balance: float64(maxTokens)}
}

func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.balance = math.Min(b.max, b.balance+b.ratio)
	b.mu.Unlock()
}

func (b *retryBudget) spend() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < 1 {
		return false
	}
	b.balance--
	return true
}
