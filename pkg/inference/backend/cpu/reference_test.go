package cpu

import (
	"math"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// naiveForward is the textbook forward pass the kernel is checked and
// benchmarked against: for every output, a dot product of an input row with
// a column of W (a strided walk), accumulated in float32 like the kernel.
func naiveForward(layers []backend.Layer, rows []float32, batch int) []float32 {
	x := rows
	for _, l := range layers {
		y := make([]float32, batch*l.Out)
		for r := range batch {
			for o := range l.Out {
				sum := l.B[o]
				for i := range l.In {
					sum += x[r*l.In+i] * l.W[i*l.Out+o]
				}
				y[r*l.Out+o] = naiveActivate(l.Activation, sum)
			}
		}
		x = y
	}
	return x
}

func naiveActivate(act backend.Activation, v float32) float32 {
	switch act {
	case backend.ReLU:
		return max(v, 0)
	case backend.Sigmoid:
		return float32(1 / (1 + math.Exp(-float64(v))))
	case backend.Tanh:
		return float32(math.Tanh(float64(v)))
	}
	return v
}

// relTol is the agreement demanded of the kernel with naiveForward.
const relTol = 1e-4

// checkClose fails t unless every got[i] is within relTol*max(1, |want[i]|)
// of want[i]: relative for large values, absolute near zero.
func checkClose(t testing.TB, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	bad := 0
	for i := range got {
		w := float64(want[i])
		if d := math.Abs(float64(got[i]) - w); !(d <= relTol*math.Max(1, math.Abs(w))) {
			if bad < 5 {
				t.Errorf("value %d = %g, want %g (difference %.3g)", i, got[i], want[i], d)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("... %d values out of tolerance in all", bad)
	}
}
