package cpu

import (
	"fmt"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

// benchMLP is a benchmarked model: 4 dense layers of width w, i.e. 3
// hidden layers. At w = 1024 its weights (16 MiB) fit in the 32 MiB L3 of
// the machine the kernels were tuned on; at w = 2048 (64 MiB) they do not,
// so a batch of one runs at the speed of memory.
func benchMLP(w int) []backend.Layer {
	return backendtest.RandomStack(42, []int{w, w, w, w, w}, []backend.Activation{backend.ReLU, backend.ReLU, backend.ReLU, backend.Identity})
}

var (
	benchWidths  = []int{1024, 2048}
	benchBatches = []int{1, 8, 64}
)

func reportGFLOPS(b *testing.B, layers []backend.Layer, batch int) {
	flops := 0.0
	for _, l := range layers {
		flops += 2 * float64(batch) * float64(l.In) * float64(l.Out)
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkForward runs benchMLP on every kernel this CPU has, on all its
// cores, e.g.
//
//	go test -run '^$' -bench BenchmarkForward -benchtime 10x -count 3 ./pkg/inference/backend/cpu/
func BenchmarkForward(b *testing.B) {
	for _, width := range benchWidths {
		layers := benchMLP(width)
		b.Run(fmt.Sprintf("width=%d", width), func(b *testing.B) {
			forEachKernel(b, func(b *testing.B, _ *kernel) {
				m, err := New().Load(layers)
				if err != nil {
					b.Fatalf("Load: %v", err)
				}
				defer m.Close()
				for _, batch := range benchBatches {
					rows := backendtest.RandomRows(1, batch*width)
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
			})
		})
	}
}

func BenchmarkNaive(b *testing.B) {
	layers := benchMLP(1024)
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
