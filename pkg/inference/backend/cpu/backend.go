package cpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// Name is the backend's name, as Backend.Name returns it.
const Name = "cpu"

// ErrClosed is returned (wrapped) by Load on a closed Backend and by Forward
// on a closed model or a model of a closed Backend.
var ErrClosed = errors.New("closed")

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Model   = (*model)(nil)
)

// Option configures a Backend.
type Option func(*Backend)

// WithWorkers sets how many goroutines one layer of one Forward call may
// use. n < 1 means the default, runtime.GOMAXPROCS(0).
func WithWorkers(n int) Option {
	return func(b *Backend) {
		if n >= 1 {
			b.workers = n
		}
	}
}

// Backend runs models on the host's CPU cores in pure Go. It is safe for
// concurrent use.
type Backend struct {
	workers int
	closed  atomic.Bool
}

// New returns a CPU backend.
func New(opts ...Option) *Backend {
	b := &Backend{workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Name returns "cpu".
func (b *Backend) Name() string { return Name }

// Workers is the most goroutines one layer of one Forward call uses.
func (b *Backend) Workers() int { return b.workers }

// Load validates layers and copies their weights into the kernel's packed
// layout; the caller may reuse layers afterwards.
func (b *Backend) Load(layers []backend.Layer) (backend.Model, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("loading model: cpu backend: %w", ErrClosed)
	}
	if err := backend.CheckStack(layers); err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	return newModel(b, layers), nil
}

// Close marks the backend closed: Load and the Forward of every model it
// loaded fail from then on. Forward calls already running finish. Close is
// idempotent.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}
