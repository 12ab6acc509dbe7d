package cuda

import (
	"errors"
	"fmt"
	"math"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

var _ backend.Model = (*model)(nil)

// model is a stack of layers resident on the device. Every field but b and
// width is guarded by b.mu.
type model struct {
	b      *Backend
	width  int // the first layer's In
	layers []deviceLayer
	closed bool

	// Device buffers for one layer's augmented input and its output, sized
	// for the largest batch seen so far and reused by every layer.
	in, out       uintptr
	inCap, outCap int // in float32 values

	// Host scratch for the augmented input and intermediate outputs.
	hostIn, hostOut []float32
}

// deviceLayer is a layer whose weights, with the bias folded in as a last
// row, live on the device: w holds [In+1, Out] float32 values, row-major.
type deviceLayer struct {
	in, out    int
	activation backend.Activation
	w          uintptr
}

// Load validates the layers and copies each layer's weights and bias to the
// device once. They stay there until the model or the backend is closed.
func (b *Backend) Load(layers []backend.Layer) (backend.Model, error) {
	if err := backend.CheckStack(layers); err != nil {
		return nil, fmt.Errorf("invalid model: %w", err)
	}
	for i, l := range layers {
		if l.In+1 > math.MaxInt32 || l.Out > math.MaxInt32 {
			return nil, fmt.Errorf("invalid model: layer %d is %dx%d, cuBLAS takes dimensions below 2^31", i, l.In, l.Out)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	m := &model{b: b, width: layers[0].In}
	err := b.onDevice(func() error {
		if err := m.upload(layers); err != nil {
			return errors.Join(err, m.freeDevice())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading a model on CUDA device %d: %w", b.device, err)
	}
	b.models[m] = struct{}{}
	return m, nil
}

// upload allocates and fills each layer's weights, recording every
// allocation in m at once so that freeDevice releases it on failure.
func (m *model) upload(layers []backend.Layer) error {
	for i, l := range layers {
		w := make([]float32, (l.In+1)*l.Out)
		copy(w, l.W)
		copy(w[l.In*l.Out:], l.B)
		p, err := m.b.alloc(len(w))
		if err != nil {
			return fmt.Errorf("layer %d weights: %w", i, err)
		}
		m.layers = append(m.layers, deviceLayer{in: l.In, out: l.Out, activation: l.Activation, w: p})
		if err := m.b.upload(p, w); err != nil {
			return fmt.Errorf("layer %d weights: %w", i, err)
		}
	}
	return nil
}

// Forward runs rows through every layer. For each layer it copies the input,
// with a column of ones appended for the bias, to the device, multiplies it
// by the weights there with cuBLAS, copies the product back and applies the
// activation on the host. There is no kernel compiler in a cgo-free build,
// so the element-wise activation runs where Go runs; its cost is linear in
// the output while the product's is not.
func (m *model) Forward(rows []float32, batch int) ([]float32, error) {
	if err := backend.CheckInput(rows, batch, m.width); err != nil {
		return nil, err
	}
	if batch > math.MaxInt32 {
		return nil, fmt.Errorf("batch %d is too large for cuBLAS", batch)
	}
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	var result []float32
	err := b.onDevice(func() error {
		if err := m.reserve(batch); err != nil {
			return err
		}
		x := rows
		for i, l := range m.layers {
			var err error
			if x, err = m.layer(l, x, batch, i == len(m.layers)-1); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
		}
		result = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("forward on CUDA device %d: %w", b.device, err)
	}
	return result, nil
}

// layer runs one layer on x [batch, l.in]. The result is a fresh slice for
// the last layer and m.hostOut otherwise.
func (m *model) layer(l deviceLayer, x []float32, batch int, last bool) ([]float32, error) {
	aug := m.hostIn[:batch*(l.in+1)]
	for r := range batch {
		row := aug[r*(l.in+1) : (r+1)*(l.in+1)]
		copy(row, x[r*l.in:(r+1)*l.in])
		row[l.in] = 1
	}
	if err := m.b.upload(m.in, aug); err != nil {
		return nil, err
	}
	if err := m.b.gemm(batch, l.out, l.in+1, m.in, l.w, m.out); err != nil {
		return nil, err
	}
	var y []float32
	if last {
		y = make([]float32, batch*l.out)
	} else {
		y = m.hostOut[:batch*l.out]
	}
	if err := m.b.download(y, m.out); err != nil {
		return nil, err
	}
	l.activation.ApplyTo(y)
	return y, nil
}

// reserve makes the device and host buffers hold batch rows of every layer.
func (m *model) reserve(batch int) error {
	var inWidth, outWidth int
	for _, l := range m.layers {
		inWidth = max(inWidth, l.in+1)
		outWidth = max(outWidth, l.out)
	}
	if err := m.grow(&m.in, &m.inCap, batch*inWidth); err != nil {
		return fmt.Errorf("input buffer: %w", err)
	}
	if err := m.grow(&m.out, &m.outCap, batch*outWidth); err != nil {
		return fmt.Errorf("output buffer: %w", err)
	}
	if len(m.hostIn) < batch*inWidth {
		m.hostIn = make([]float32, batch*inWidth)
	}
	if len(m.hostOut) < batch*outWidth {
		m.hostOut = make([]float32, batch*outWidth)
	}
	return nil
}

// grow replaces the device buffer *p of *capacity values by one of n values
// when it is smaller. On failure *p is left empty, never dangling.
func (m *model) grow(p *uintptr, capacity *int, n int) error {
	if *capacity >= n {
		return nil
	}
	if old := *p; old != 0 {
		*p, *capacity = 0, 0
		if err := m.b.lib.check("cudaFree", m.b.lib.free(old)); err != nil {
			return err
		}
	}
	q, err := m.b.alloc(n)
	if err != nil {
		return err
	}
	*p, *capacity = q, n
	return nil
}

// Close frees the model's device memory. Closing twice, or after the
// backend was closed, is a no-op.
func (m *model) Close() error {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	delete(b.models, m)
	if err := b.onDevice(m.freeDevice); err != nil {
		return fmt.Errorf("closing a model on CUDA device %d: %w", b.device, err)
	}
	return nil
}

// freeDevice frees every device allocation of m once and forgets it, so a
// second call frees nothing. The caller holds b.mu on the device thread.
func (m *model) freeDevice() error {
	var errs []error
	free := func(what string, p *uintptr) {
		if *p == 0 {
			return
		}
		if err := m.b.lib.check("cudaFree", m.b.lib.free(*p)); err != nil {
			errs = append(errs, fmt.Errorf("freeing %s: %w", what, err))
		}
		*p = 0
	}
	for i := range m.layers {
		free(fmt.Sprintf("layer %d weights", i), &m.layers[i].w)
	}
	free("input buffer", &m.in)
	free("output buffer", &m.out)
	m.inCap, m.outCap = 0, 0
	m.hostIn, m.hostOut = nil, nil
	return errors.Join(errs...)
}
