package cpu

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

func TestNew(t *testing.T) {
	cases := []struct {
		name        string
		opts        []Option
		wantWorkers int
	}{
		{"default", nil, runtime.GOMAXPROCS(0)},
		{"three workers", []Option{WithWorkers(3)}, 3},
		{"zero means default", []Option{WithWorkers(0)}, runtime.GOMAXPROCS(0)},
		{"negative means default", []Option{WithWorkers(-2)}, runtime.GOMAXPROCS(0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.opts...)
			if got := b.Name(); got != "cpu" {
				t.Errorf("Name() = %q, want %q", got, "cpu")
			}
			if got := b.Workers(); got != tc.wantWorkers {
				t.Errorf("Workers() = %d, want %d", got, tc.wantWorkers)
			}
		})
	}
}

func TestLoadRejectsBadLayers(t *testing.T) {
	good := func(in, out int) backend.Layer {
		return backendtest.RandomStack(1, []int{in, out}, mixed[:1])[0]
	}
	cases := []struct {
		name   string
		layers []backend.Layer
		want   []string // substrings of the error
	}{
		{"no layers", nil, []string{"at least one layer"}},
		{"zero width", []backend.Layer{{In: 0, Out: 3, B: make([]float32, 3), Activation: backend.ReLU}}, []string{"layer 0", "must be positive"}},
		{"short weights", []backend.Layer{{In: 2, Out: 3, W: make([]float32, 5), B: make([]float32, 3), Activation: backend.ReLU}}, []string{"weights have 5 values, want 2 x 3 = 6"}},
		{"long bias", []backend.Layer{{In: 2, Out: 3, W: make([]float32, 6), B: make([]float32, 4), Activation: backend.ReLU}}, []string{"bias has 4 values, want 3"}},
		{"unknown activation", []backend.Layer{{In: 1, Out: 1, W: []float32{1}, B: []float32{0}, Activation: "gelu"}}, []string{`unknown activation "gelu"`}},
		{"widths do not chain", []backend.Layer{good(4, 5), good(6, 2)}, []string{"layer 1 takes 6 inputs but layer 0 gives 5"}},
		{"every error reported", []backend.Layer{good(4, 5), {In: 5, Out: 2, W: make([]float32, 9), B: make([]float32, 2), Activation: "softmax"}}, []string{"weights have 9 values", `unknown activation "softmax"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New().Load(tc.layers)
			if err == nil {
				t.Fatalf("Load succeeded (%v), want an error", m)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Load error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	m, err := New().Load(backendtest.RandomStack(2, []int{3, 4}, mixed[:1]))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	cases := []struct {
		name  string
		rows  []float32
		batch int
		want  string
	}{
		{"zero batch", nil, 0, "batch 0 must be positive"},
		{"negative batch", make([]float32, 3), -1, "batch -1 must be positive"},
		{"short input", make([]float32, 5), 2, "input has 5 values, want 2 rows x 3 = 6"},
		{"long input", make([]float32, 7), 2, "input has 7 values, want 2 rows x 3 = 6"},
		{"batch of rows of the wrong width", make([]float32, 4), 1, "input has 4 values, want 1 rows x 3 = 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := m.Forward(tc.rows, tc.batch)
			if err == nil {
				t.Fatalf("Forward returned %v, want an error", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Forward error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestModelClose(t *testing.T) {
	m, err := New().Load(backendtest.RandomStack(4, []int{3, 4}, mixed[:1]))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rows := backendtest.RandomRows(4, 3)
	if _, err := m.Forward(rows, 1); err != nil {
		t.Fatalf("Forward before Close: %v", err)
	}
	for i := range 2 {
		if err := m.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := m.Forward(rows, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close: error %v, want ErrClosed", err)
	}
}

func TestBackendClose(t *testing.T) {
	b := New()
	layers := backendtest.RandomStack(4, []int{3, 4}, mixed[:1])
	m, err := b.Load(layers)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for i := range 2 {
		if err := b.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := m.Forward(backendtest.RandomRows(4, 3), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after the backend's Close: error %v, want ErrClosed", err)
	}
	if _, err := b.Load(layers); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: error %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("model Close after the backend's Close: %v", err)
	}
}
