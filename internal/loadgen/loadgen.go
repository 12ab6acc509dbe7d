// Package loadgen sends inference requests at a set rate, spread round-robin
// over a changing set of target URLs, and counts what failed. Tests,
// benchmarks and the demo drive the system with it.
package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Generator sends requests; create it with New and Run it.
type Generator struct {
	client *http.Client

	mu      sync.Mutex
	rate    float64
	targets []string
	body    []byte
	next    int

	sent, failed atomic.Int64
	lastErr      atomic.Value // string
	inFlight     sync.WaitGroup
}

// New returns a generator with rate 0 and no targets. Requests time out
// after timeout.
func New(timeout time.Duration) *Generator {
	return &Generator{client: &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second},
	}}
}

// SetRate sets the requests per second from now on.
func (g *Generator) SetRate(perSecond float64) {
	g.mu.Lock()
	g.rate = perSecond
	g.mu.Unlock()
}

// Rate returns the requests per second set last.
func (g *Generator) Rate() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rate
}

// SetTargets replaces the URLs requests go to (each gets an equal share).
func (g *Generator) SetTargets(urls []string) {
	g.mu.Lock()
	g.targets = append([]string(nil), urls...)
	g.mu.Unlock()
}

// SetBody sets the JSON body of every request from now on (default none),
// e.g. an inference request built by V2Request.
func (g *Generator) SetBody(body []byte) {
	g.mu.Lock()
	g.body = append([]byte(nil), body...)
	g.mu.Unlock()
}

// Sent and Failed count requests sent and requests that failed (transport
// error or a status other than 200). LastError describes the latest failure.
func (g *Generator) Sent() int64   { return g.sent.Load() }
func (g *Generator) Failed() int64 { return g.failed.Load() }
func (g *Generator) LastError() string {
	s, _ := g.lastErr.Load().(string)
	return s
}

// Run sends requests until ctx ends and waits for those in flight. Due
// requests are computed from the rate every millisecond tick, so a rate
// change takes effect at once and the long-run rate is exact.
func (g *Generator) Run(ctx context.Context) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	var due float64
	for {
		select {
		case <-ctx.Done():
			g.inFlight.Wait()
			return
		case now := <-tick.C:
			g.mu.Lock()
			due += g.rate * now.Sub(last).Seconds()
			last = now
			for ; due >= 1; due-- {
				if len(g.targets) == 0 {
					due = 0
					break
				}
				url := g.targets[g.next%len(g.targets)]
				g.next++
				g.inFlight.Add(1)
				go g.send(url, g.body)
			}
			g.mu.Unlock()
		}
	}
}

func (g *Generator) send(url string, body []byte) {
	defer g.inFlight.Done()
	g.sent.Add(1)
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := g.client.Post(url, "application/json", r)
	if err != nil {
		g.failed.Add(1)
		g.lastErr.Store(err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.failed.Add(1)
		g.lastErr.Store(url + ": " + resp.Status)
	}
}
