//go:build gpu

package cuda

import (
	"fmt"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
)

// FP32 sgemm without TF32 (cuBLAS's default math mode for sgemm) sums in a
// different order than the float64 reference; 1e-3 of max(1, |want|) leaves
// room for that at 1024-wide layers and still catches a wrong mapping, a
// dropped bias or TF32's 10-bit mantissa on large sums.
const gpuTolerance = 1e-3

// openGPU opens the real CUDA libraries; make test-gpu runs where they exist,
// so failing to open them is an error, not a skip.
func openGPU(tb testing.TB) *Backend {
	tb.Helper()
	b, err := Open()
	if err != nil {
		tb.Fatalf("make test-gpu needs an NVIDIA GPU, its driver, libcudart and libcublas: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Error(err)
		}
	})
	devices, version, free, total, err := b.Info()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%d CUDA device(s), runtime %d.%d, %d of %d MiB free", devices, version/1000, version%1000/10, free>>20, total>>20)
	return b
}

func TestGPUForwardMatchesReference(t *testing.T) {
	b := openGPU(t)
	cases := []struct {
		name   string
		widths []int
		acts   []backend.Activation
	}{
		{"1x1", []int{1, 1}, []backend.Activation{backend.Identity}},
		{"3x5x7", []int{3, 5, 7}, []backend.Activation{backend.ReLU, backend.Sigmoid}},
		{"4-layer MLP, every activation", []int{256, 1024, 513, 64, 10}, allActivations},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			layers := backendtest.RandomStack(21, tc.widths, tc.acts)
			m, err := b.Load(layers)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, batch := range []int{1, 64, 7} {
				rows := backendtest.RandomRows(uint64(batch), batch*tc.widths[0])
				got, err := m.Forward(rows, batch)
				if err != nil {
					t.Fatalf("batch %d: %v", batch, err)
				}
				backendtest.CheckClose(t, got, backendtest.Reference(layers, rows, batch), gpuTolerance)
			}
		})
	}
}

func TestGPUConcurrentForward(t *testing.T) {
	b := openGPU(t)
	layers := backendtest.RandomStack(22, []int{128, 256, 32}, []backend.Activation{backend.Tanh, backend.Sigmoid})
	m, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	backendtest.CheckConcurrentForward(t, m, layers, 200, 10, gpuTolerance)
}

// BenchmarkGPUForward runs a 1024-wide 4-layer MLP: per layer one input copy
// to the device, one sgemm and one copy back, so batch 1 measures the round
// trips and batch 64 starts to measure the GPU.
func BenchmarkGPUForward(b *testing.B) {
	bk := openGPU(b)
	const width = 1024
	widths := []int{width, width, width, width, width}
	acts := []backend.Activation{backend.ReLU, backend.ReLU, backend.ReLU, backend.Identity}
	m, err := bk.Load(backendtest.RandomStack(23, widths, acts))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	flops := 2 * float64((width+1)*width*len(acts)) // per row
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rows := backendtest.RandomRows(24, batch*width)
			for b.Loop() {
				if _, err := m.Forward(rows, batch); err != nil {
					b.Fatal(err)
				}
			}
			perSecond := float64(b.N*batch) / b.Elapsed().Seconds()
			b.ReportMetric(perSecond, "rows/s")
			b.ReportMetric(perSecond*flops/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGPUMLP4096 is hack/gpu-check's benchmark: a 4-layer MLP 4096
// wide (ReLU between layers, the bias folded into each product), per batch
// size three ways, each reported in GFLOP/s of the model's arithmetic
// (2 x (4096+1) x 4096 x 4 per row):
//
//   - forward: the backend's Forward, with its per-layer copy up, sgemm and
//     copy back and the activation on the host;
//   - sgemm: the same four cuBLAS products alone on data already on the
//     device, one synchronisation per pass: the limit of this design;
//   - cpu: the CPU backend on the same weights.
//
// forward/sgemm is the share of the GPU's work that reaches the caller; the
// rest is the host round trip between layers.
func BenchmarkGPUMLP4096(b *testing.B) {
	bk := openGPU(b)
	const width, depth = 4096, 4
	widths := make([]int, depth+1)
	for i := range widths {
		widths[i] = width
	}
	acts := []backend.Activation{backend.ReLU, backend.ReLU, backend.ReLU, backend.Identity}
	layers := backendtest.RandomStack(25, widths, acts)
	gpuModel, err := bk.Load(layers)
	if err != nil {
		b.Fatal(err)
	}
	defer gpuModel.Close()
	cpuModel, err := cpu.New().Load(layers)
	if err != nil {
		b.Fatal(err)
	}
	defer cpuModel.Close()
	flopsPerRow := 2 * float64((width+1)*width*depth)
	report := func(b *testing.B, batch int) {
		b.ReportMetric(float64(b.N*batch)*flopsPerRow/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	for _, batch := range []int{1, 8, 64, 256, 1024} {
		rows := backendtest.RandomRows(uint64(batch), batch*width)
		b.Run(fmt.Sprintf("forward/batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				if _, err := gpuModel.Forward(rows, batch); err != nil {
					b.Fatal(err)
				}
			}
			report(b, batch)
		})
		b.Run(fmt.Sprintf("sgemm/batch=%d", batch), func(b *testing.B) {
			benchSgemm(b, bk, batch, width, depth)
			report(b, batch)
		})
		b.Run(fmt.Sprintf("cpu/batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				if _, err := cpuModel.Forward(rows, batch); err != nil {
					b.Fatal(err)
				}
			}
			report(b, batch)
		})
	}
}

// benchSgemm times depth products [batch, width+1] x [width+1, width] on
// device buffers (zeros: cuBLAS's speed does not depend on the values).
func benchSgemm(b *testing.B, bk *Backend, batch, width, depth int) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	var bufs []uintptr
	defer func() {
		_ = bk.onDevice(func() error {
			for _, p := range bufs {
				_ = bk.lib.check("cudaFree", bk.lib.free(p))
			}
			return nil
		})
	}()
	err := bk.onDevice(func() error {
		for _, n := range []int{(width + 1) * width, batch * (width + 1), batch * width} {
			p, err := bk.alloc(n)
			if err != nil {
				return err
			}
			bufs = append(bufs, p)
			if err := bk.upload(p, make([]float32, n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	w, in, out := bufs[0], bufs[1], bufs[2]
	for b.Loop() {
		err := bk.onDevice(func() error {
			for range depth {
				if err := bk.gemm(batch, width, width+1, in, w, out); err != nil {
					return err
				}
			}
			return bk.lib.check("cudaDeviceSynchronize", bk.lib.deviceSynchronize())
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
