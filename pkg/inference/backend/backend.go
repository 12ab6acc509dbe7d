// Package backend runs the dense layers of a model on a device. A model is
// uploaded once (weights stay resident on the device) and then run on
// batches of rows.
package backend

import (
	"errors"
	"fmt"
	"math"
)

// Activation is applied to a layer's output, element by element.
type Activation string

// Activations.
const (
	Identity Activation = "identity"
	ReLU     Activation = "relu"
	Sigmoid  Activation = "sigmoid"
	Tanh     Activation = "tanh"
)

// Layer is a dense layer: out = act(in · W + B), with in of shape
// [batch, In], W of shape [In, Out] row-major, B of length Out.
type Layer struct {
	In, Out    int
	W          []float32
	B          []float32
	Activation Activation
}

// Validate checks the layer's shapes and activation.
func (l Layer) Validate() error {
	var errs []error
	if l.In <= 0 || l.Out <= 0 {
		errs = append(errs, fmt.Errorf("dimensions %dx%d must be positive", l.In, l.Out))
	}
	if len(l.W) != l.In*l.Out {
		errs = append(errs, fmt.Errorf("weights have %d values, want %d x %d = %d", len(l.W), l.In, l.Out, l.In*l.Out))
	}
	if len(l.B) != l.Out {
		errs = append(errs, fmt.Errorf("bias has %d values, want %d", len(l.B), l.Out))
	}
	switch l.Activation {
	case Identity, ReLU, Sigmoid, Tanh:
	default:
		errs = append(errs, fmt.Errorf("unknown activation %q (want identity, relu, sigmoid or tanh)", l.Activation))
	}
	return errors.Join(errs...)
}

// Backend is a device that runs models.
type Backend interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Load validates the layers (each layer's In must equal the previous
	// layer's Out) and makes them resident on the device.
	Load(layers []Layer) (Model, error)
	// Close releases the device.
	Close() error
}

// Model is a loaded stack of layers.
type Model interface {
	// Forward runs rows (batch rows of the first layer's In values,
	// row-major) through every layer and returns batch rows of the last
	// layer's Out values. The returned slice belongs to the caller: a
	// backend never reuses it. It is safe for concurrent use.
	Forward(rows []float32, batch int) ([]float32, error)
	// Close frees the model's device memory.
	Close() error
}

// CheckStack validates layers as one model.
func CheckStack(layers []Layer) error {
	if len(layers) == 0 {
		return errors.New("a model needs at least one layer")
	}
	var errs []error
	for i, l := range layers {
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("layer %d: %w", i, err))
		}
		if i > 0 && l.In != layers[i-1].Out {
			errs = append(errs, fmt.Errorf("layer %d takes %d inputs but layer %d gives %d", i, l.In, i-1, layers[i-1].Out))
		}
	}
	return errors.Join(errs...)
}

// CheckInput validates a Forward call's arguments against the model's input width.
func CheckInput(rows []float32, batch, in int) error {
	if batch <= 0 {
		return fmt.Errorf("batch %d must be positive", batch)
	}
	if len(rows) != batch*in {
		return fmt.Errorf("input has %d values, want %d rows x %d = %d", len(rows), batch, in, batch*in)
	}
	return nil
}

// ApplyTo applies the activation to v in place.
func (a Activation) ApplyTo(v []float32) {
	switch a {
	case ReLU:
		for i, x := range v {
			if x < 0 {
				v[i] = 0
			}
		}
	case Sigmoid:
		for i, x := range v {
			v[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	case Tanh:
		for i, x := range v {
			v[i] = float32(math.Tanh(float64(x)))
		}
	}
}
