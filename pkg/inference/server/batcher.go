package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// Errors of Submit.
var (
	// ErrQueueFull: the queue holds as many rows as it may; retry later.
	ErrQueueFull = errors.New("queue full")
	// ErrClosed: the batcher is draining for shutdown.
	ErrClosed = errors.New("server shutting down")
)

// Batcher is a model version's dynamic batcher: requests of a few rows each
// are queued, gathered into batches of at most MaxBatch rows (waiting at
// most MaxDelay after the first for more to arrive), run through the model
// one batch at a time, and answered with their own rows of the result.
type Batcher struct {
	model    backend.Model
	in, out  int
	maxBatch int
	maxDelay time.Duration
	maxQueue int
	// onBatch, if set, observes every batch: its rows and how long it ran.
	onBatch func(rows int, took time.Duration)
	onRows  func(input, output []float32, rows int)

	queue  chan *pending
	queued atomic.Int64 // rows admitted but not yet in a batch

	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
}

type pending struct {
	rows []float32
	n    int
	done chan result
}

type result struct {
	out []float32
	err error
}

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	MaxBatch int
	MaxDelay time.Duration
	// MaxQueue is how many rows may wait; beyond, Submit says ErrQueueFull.
	MaxQueue int
	OnBatch  func(rows int, took time.Duration)
	// OnRows sees each batch's input and output before the requests get
	// their answers (it must not keep or change them).
	OnRows func(input, output []float32, rows int)
}

// NewBatcher starts a batcher for model, whose rows take in values and give
// out values.
func NewBatcher(model backend.Model, in, out int, cfg BatcherConfig) *Batcher {
	b := &Batcher{
		model: model, in: in, out: out,
		maxBatch: max(1, cfg.MaxBatch), maxDelay: cfg.MaxDelay, maxQueue: max(cfg.MaxQueue, cfg.MaxBatch, 1),
		onBatch: cfg.OnBatch, onRows: cfg.OnRows, stopped: make(chan struct{}),
	}
	// A request holds at least one row, so this never blocks an admitted one.
	b.queue = make(chan *pending, b.maxQueue)
	go b.run()
	return b
}

// QueuedRows is how many rows wait for a batch.
func (b *Batcher) QueuedRows() int64 { return b.queued.Load() }

// Submit queues n rows and waits for their result. It returns ErrQueueFull
// at once if the queue is full, ErrClosed after Close, and the context's
// error if ctx ends first (the rows still run; their result is dropped).
func (b *Batcher) Submit(ctx context.Context, rows []float32, n int) ([]float32, error) {
	p := &pending{rows: rows, n: n, done: make(chan result, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, ErrClosed
	}
	if b.queued.Add(int64(n)) > int64(b.maxQueue) {
		b.queued.Add(-int64(n))
		b.mu.RUnlock()
		return nil, ErrQueueFull
	}
	b.queue <- p
	b.mu.RUnlock()
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops taking requests, lets every queued one finish, and returns
// when the last batch has run.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.stopped
}

func (b *Batcher) run() {
	defer close(b.stopped)
	var carry *pending // a request that did not fit the previous batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first := carry
		carry = nil
		if first == nil {
			var ok bool
			if first, ok = <-b.queue; !ok {
				return
			}
		}
		batch, rows := []*pending{first}, first.n
		// add takes p into the batch if it fits; otherwise p waits for the next.
		add := func(p *pending, ok bool) bool {
			if !ok {
				return false
			}
			if rows+p.n > b.maxBatch {
				carry = p
				return false
			}
			batch, rows = append(batch, p), rows+p.n
			return true
		}
		if b.maxDelay > 0 && rows < b.maxBatch {
			timer.Reset(b.maxDelay)
		wait:
			for rows < b.maxBatch {
				select {
				case p, ok := <-b.queue:
					if !add(p, ok) {
						break wait
					}
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		} else {
			// No waiting: take only what is already queued.
		drain:
			for rows < b.maxBatch {
				select {
				case p, ok := <-b.queue:
					if !add(p, ok) {
						break drain
					}
				default:
					break drain
				}
			}
		}
		b.execute(batch, rows)
	}
}

func (b *Batcher) execute(batch []*pending, rows int) {
	b.queued.Add(-int64(rows))
	input := batch[0].rows
	if len(batch) > 1 {
		input = make([]float32, 0, rows*b.in)
		for _, p := range batch {
			input = append(input, p.rows...)
		}
	}
	start := time.Now()
	out, err := b.model.Forward(input, rows)
	if b.onBatch != nil {
		b.onBatch(rows, time.Since(start))
	}
	if b.onRows != nil && err == nil {
		b.onRows(input, out, rows)
	}
	off := 0
	for _, p := range batch {
		if err != nil {
			p.done <- result{err: err}
			continue
		}
		p.done <- result{out: out[off*b.out : (off+p.n)*b.out : (off+p.n)*b.out]}
		off += p.n
	}
}
