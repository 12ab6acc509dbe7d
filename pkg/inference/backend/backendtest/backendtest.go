// Package backendtest holds what tests of every backend share: random
// models and inputs, and a float64 reference forward pass to check against.
package backendtest

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// RandomStack returns one layer per activation, layer i taking widths[i]
// inputs and giving widths[i+1] outputs. Weights are scaled by 1/sqrt(In)
// so activations stay near unit size at any depth.
func RandomStack(seed uint64, widths []int, acts []backend.Activation) []backend.Layer {
	rng := rand.New(rand.NewPCG(seed, 1))
	layers := make([]backend.Layer, len(acts))
	for i, act := range acts {
		in, out := widths[i], widths[i+1]
		scale := 1 / math.Sqrt(float64(in))
		l := backend.Layer{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out), Activation: act}
		for j := range l.W {
			l.W[j] = float32((2*rng.Float64() - 1) * scale)
		}
		for j := range l.B {
			l.B[j] = float32(2*rng.Float64() - 1)
		}
		layers[i] = l
	}
	return layers
}

// RandomRows returns n values in [-1, 1).
func RandomRows(seed uint64, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	rows := make([]float32, n)
	for i := range rows {
		rows[i] = float32(2*rng.Float64() - 1)
	}
	return rows
}

// Reference is the forward pass in plain float64 loops.
func Reference(layers []backend.Layer, rows []float32, batch int) []float64 {
	x := make([]float64, len(rows))
	for i, v := range rows {
		x[i] = float64(v)
	}
	for _, l := range layers {
		y := make([]float64, batch*l.Out)
		for r := range batch {
			for o := range l.Out {
				sum := float64(l.B[o])
				for i := range l.In {
					sum += x[r*l.In+i] * float64(l.W[i*l.Out+o])
				}
				switch l.Activation {
				case backend.ReLU:
					sum = math.Max(sum, 0)
				case backend.Sigmoid:
					sum = 1 / (1 + math.Exp(-sum))
				case backend.Tanh:
					sum = math.Tanh(sum)
				}
				y[r*l.Out+o] = sum
			}
		}
		x = y
	}
	return x
}

// CheckClose fails t unless every got[i] is within tol*max(1, |want[i]|)
// of want[i]: relative for large values, absolute near zero.
func CheckClose(t testing.TB, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	bad := 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			if bad < 5 {
				t.Errorf("value %d = %g, want %g (difference %.3g, tolerance %g)", i, got[i], want[i], d, tol)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("... %d values out of tolerance in all", bad)
	}
}

// CheckConcurrentForward runs m from eight goroutines at once, each with its
// own batch size (1, 10, ..., 64) and rows, reps times, and checks every
// result against Reference. Run it with -race.
func CheckConcurrentForward(t *testing.T, m backend.Model, layers []backend.Layer, seed uint64, reps int, tol float64) {
	t.Helper()
	in := layers[0].In
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			batch := 1 + 9*g
			rows := RandomRows(seed+uint64(g), batch*in)
			want := Reference(layers, rows, batch)
			for range reps {
				got, err := m.Forward(rows, batch)
				if err != nil {
					t.Error(err)
					return
				}
				CheckClose(t, got, want, tol)
			}
		})
	}
	wg.Wait()
}
