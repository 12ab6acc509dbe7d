package cpu

import (
	"fmt"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

// benchMLP is the benchmarked model: 4 dense layers of width 1024.
func benchMLP() []backend.Layer {
	const w = 1024
	return backendtest.RandomStack(42, []int{w, w, w, w, w}, []backend.Activation{backend.ReLU, backend.ReLU, backend.ReLU, backend.Identity})
}

var benchBatches = []int{1, 8, 64}

func reportGFLOPS(b *testing.B, layers []backend.Layer, batch int) {
	flops := 0.0
	for _, l := range layers {
		flops += 2 * float64(batch) * float64(l.In) * float64(l.Out)
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkForward(b *testing.B) {
	layers := benchMLP()
	m, err := New().Load(layers)
	if err != nil {
		b.Fatalf("Load: %v", err)
	}
	defer m.Close()
	for _, batch := range benchBatches {
		rows := backendtest.RandomRows(1, batch*layers[0].In)
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Forward(rows, batch); err != nil {
					b.Fatalf("Forward: %v", err)
				}
			}
			reportGFLOPS(b, layers, batch)
		})
	}
}

func BenchmarkNaive(b *testing.B) {
	layers := benchMLP()
	for _, batch := range benchBatches {
		rows := backendtest.RandomRows(1, batch*layers[0].In)
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				naiveForward(layers, rows, batch)
			}
			reportGFLOPS(b, layers, batch)
		})
	}
}
