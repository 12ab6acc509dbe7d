package cpu

import (
	"fmt"
	"sync"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// model is a loaded stack of layers. Its weights are read-only after Load,
// so Forward calls run concurrently; mu only keeps Close from freeing the
// weights under a running Forward.
type model struct {
	b       *Backend
	in, out int
	// hidden is the widest output of any layer but the last: the size of
	// a row of the scratch buffers that carry activations between layers.
	hidden int
	// scratch pools *scratch.
	scratch sync.Pool

	mu     sync.RWMutex
	closed bool
	layers []packedLayer
}

// scratch is the memory one Forward call needs besides its result. It is
// pooled, so a steady stream of calls reuses it.
type scratch struct {
	hidden [2][]float32 // ping-pong between layers
	run    layerRun
}

func newModel(b *Backend, layers []backend.Layer) *model {
	m := &model{
		b:      b,
		in:     layers[0].In,
		out:    layers[len(layers)-1].Out,
		layers: make([]packedLayer, len(layers)),
	}
	k := activeKernel()
	for i, l := range layers {
		m.layers[i] = packLayer(k, l)
		if i < len(layers)-1 {
			m.hidden = max(m.hidden, l.Out)
		}
	}
	return m
}

// Forward runs batch rows through every layer. It is safe for concurrent
// use.
func (m *model) Forward(rows []float32, batch int) ([]float32, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, fmt.Errorf("forward: model: %w", ErrClosed)
	}
	if m.b.closed.Load() {
		return nil, fmt.Errorf("forward: cpu backend: %w", ErrClosed)
	}
	if err := backend.CheckInput(rows, batch, m.in); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}

	s := m.getScratch(batch)
	defer m.putScratch(s)
	result := make([]float32, batch*m.out)
	in := rows
	for i := range m.layers {
		l := &m.layers[i]
		out := result
		if i < len(m.layers)-1 {
			out = s.hidden[i%2][:batch*l.out]
		}
		s.run = layerRun{
			l:     l,
			in:    in,
			out:   out,
			batch: batch,
			plan:  newPlan(l.kernel, batch, l.in, l.out, m.b.workers),
		}
		s.run.run()
		in = out
	}
	return result, nil
}

func (m *model) getScratch(batch int) *scratch {
	s, _ := m.scratch.Get().(*scratch)
	if s == nil {
		s = new(scratch)
	}
	if n := batch * m.hidden; len(s.hidden[0]) < n {
		for i := range s.hidden {
			s.hidden[i] = make([]float32, n)
		}
	}
	return s
}

func (m *model) putScratch(s *scratch) {
	// Drop the references to the caller's input and result, and to the
	// weights, which Close may be about to free.
	s.run = layerRun{}
	m.scratch.Put(s)
}

// Close frees the model's weights; Forward fails from then on. It waits for
// running Forward calls and is idempotent.
func (m *model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.layers = nil
	return nil
}
