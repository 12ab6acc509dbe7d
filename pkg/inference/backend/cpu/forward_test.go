package cpu

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

func repeat(act backend.Activation, n int) []backend.Activation {
	return slices.Repeat([]backend.Activation{act}, n)
}

var mixed = []backend.Activation{backend.ReLU, backend.Tanh, backend.Sigmoid, backend.Identity}

// forEachKernel runs f once per kernel, as subtests (or sub-benchmarks)
// named after it, with useSIMD set so that Load packs models for that
// kernel. The SIMD one is skipped on CPUs without a SIMD kernel.
func forEachKernel[T interface {
	testing.TB
	Run(name string, f func(T)) bool
}](t T, f func(t T, k *kernel)) {
	t.Helper()
	for _, simd := range []bool{true, false} {
		name := scalarKernel.name
		if simd {
			name = "simd"
			if simdKernel != nil {
				name = simdKernel.name
			}
		}
		t.Run("kernel="+name, func(t T) {
			if simd && simdKernel == nil {
				t.Skip("this CPU has no SIMD kernel")
			}
			defer func(old bool) { useSIMD = old }(useSIMD)
			useSIMD = simd
			f(t, activeKernel())
		})
	}
}

// shapeCases cover the edges of the tiling: dimensions of 1, odd and prime
// sizes, and sizes on either side of both kernels' mr, nr and kcMax, and of
// mcMax and ncMax.
var shapeCases = []struct {
	name   string
	batch  int
	widths []int
	acts   []backend.Activation
}{
	{"1x1x1", 1, []int{1, 1}, mixed[:1]},
	{"3x5x7", 3, []int{5, 7}, mixed[:1]},
	{"batch 2 odd widths", 2, []int{3, 9}, mixed[:1]},
	{"primes 7x13x31", 7, []int{13, 31}, mixed[1:2]},
	{"primes 17x97x101", 17, []int{97, 101}, mixed[2:3]},
	{"tile multiples 64x256x256", 64, []int{256, 256}, mixed[:1]},
	{"shared dim kcScalar+1", 8, []int{kcScalar + 1, 12}, mixed[:1]},
	{"shared dim 2kcScalar+44", 7, []int{2*kcScalar + 44, 33}, mixed[:1]},
	{"shared dim kcAVX2+1", 8, []int{kcAVX2 + 1, 40}, mixed[:1]},
	{"shared dim 2kcAVX2+5", 13, []int{2*kcAVX2 + 5, 17}, mixed[1:2]},
	{"out one past a panel", 5, []int{16, 4*scalarNR + 1}, mixed[:1]},
	{"out one short of a tile", 9, []int{40, ncMax - 1}, mixed[3:4]},
	{"out one past a tile", 3, []int{40, ncMax + 1}, mixed[:1]},
	{"batch mcMax+1", mcMax + 1, []int{24, 24}, mixed[:1]},
	{"batch 257", 257, []int{64, 96}, mixed[:1]},
	{"4 layers batch 1", 1, []int{300, 129, 64, 65, 10}, mixed},
	{"4 layers batch 7", 7, []int{31, 129, 64, 65, 10}, mixed},
	{"4 layers batch 64", 64, []int{100, 257, 128, 63, 3}, mixed},
	{"4 layers batch 257", 257, []int{33, 64, 17, 128, 9}, mixed},
	{"4 layers identity", 7, []int{33, 64, 17, 128, 9}, repeat(backend.Identity, 4)},
	{"4 layers relu", 7, []int{33, 64, 17, 128, 9}, repeat(backend.ReLU, 4)},
	{"4 layers sigmoid", 7, []int{33, 64, 17, 128, 9}, repeat(backend.Sigmoid, 4)},
	{"4 layers tanh", 7, []int{33, 64, 17, 128, 9}, repeat(backend.Tanh, 4)},
	{"4 layers width 1024 batch 8", 8, []int{1024, 1024, 1024, 1024, 1024}, mixed},
}

func TestForwardMatchesNaive(t *testing.T) {
	forEachKernel(t, func(t *testing.T, _ *kernel) {
		for _, workers := range []int{1, 3} {
			b := New(WithWorkers(workers))
			for i, tc := range shapeCases {
				t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
					checkForward(t, b, uint64(i), tc.batch, tc.widths, tc.acts)
				})
			}
		}
	})
}

// TestPanelEdges runs single layers whose widths fall on either side of
// the panel widths (4 and 16 columns) and whose batches fall on either
// side of the row blocks (2 and 6 rows), with input widths of one step, a
// few steps and one step past a block of the shared dimension of either
// kernel.
func TestPanelEdges(t *testing.T) {
	outs := []int{1, 15, 16, 17, 31, 33}
	batches := []int{1, 2, 3, 4, 5, 6, 7, 13}
	ins := []int{1, 3, kcScalar + 1, kcAVX2 + 1}
	forEachKernel(t, func(t *testing.T, _ *kernel) {
		b := New(WithWorkers(2))
		seed := uint64(0)
		for _, in := range ins {
			for _, out := range outs {
				for _, batch := range batches {
					seed++
					act := mixed[seed%uint64(len(mixed))]
					t.Run(fmt.Sprintf("in=%d/out=%d/batch=%d/%s", in, out, batch, act), func(t *testing.T) {
						checkForward(t, b, seed, batch, []int{in, out}, []backend.Activation{act})
					})
				}
			}
		}
	})
}

// checkForward loads a random model of the given widths and activations
// into b and checks one Forward of a random batch against naiveForward.
func checkForward(t *testing.T, b *Backend, seed uint64, batch int, widths []int, acts []backend.Activation) {
	t.Helper()
	layers := backendtest.RandomStack(seed, widths, acts)
	rows := backendtest.RandomRows(seed, batch*widths[0])
	m, err := b.Load(layers)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer m.Close()
	got, err := m.Forward(rows, batch)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	checkClose(t, got, naiveForward(layers, rows, batch))
}

// TestTilings runs one layer under plans that cut it very differently,
// including ones far too fine for newPlan to choose, on several
// goroutines: every tiling must give the same answer.
func TestTilings(t *testing.T) {
	// 23 rows: 11 scalar row pairs and a single row, or 3 AVX2 row blocks
	// and 5 single rows. 45 columns: 12 scalar panels, the last with one
	// column, or 3 AVX2 panels, the last with 13. The shared dimension is
	// cut into blocks of kc (and of other sizes) whatever the kernel's
	// kcMax.
	const batch, in, out, kc = 23, 2*kcScalar + 3, 45, kcScalar
	layers := backendtest.RandomStack(7, []int{in, out}, []backend.Activation{backend.Tanh})
	rows := backendtest.RandomRows(7, batch*in)
	want := naiveForward(layers, rows, batch)

	forEachKernel(t, func(t *testing.T, k *kernel) {
		l := packLayer(k, layers[0])
		cases := []struct {
			name                       string
			rowsPerTile, panelsPerTile int
			kc                         int
			workers                    int
		}{
			{"one tile", batch, l.panels, kc, 1},
			{"one tile, shared dimension whole", batch, l.panels, in, 1},
			{"one tile, shared dimension in odd blocks", batch, l.panels, 7, 1},
			{"one tile per micro-tile", k.mr, 1, kc, 4},
			{"single rows", 1, 1, in, 3},
			{"odd rows, wide columns", 5, 7, kc, 2},
			{"row strips", 4, l.panels, kc, 2},
			{"column strips", batch, 2, kc, 2},
			{"more workers than tiles", batch, 6, kc, 8},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := make([]float32, batch*out)
				r := layerRun{l: &l, in: rows, out: got, batch: batch, plan: plan{
					rowsPerTile:   tc.rowsPerTile,
					panelsPerTile: tc.panelsPerTile,
					rowTiles:      ceilDiv(batch, tc.rowsPerTile),
					colTiles:      ceilDiv(l.panels, tc.panelsPerTile),
					kc:            tc.kc,
					workers:       tc.workers,
				}}
				r.run()
				checkClose(t, got, want)
			})
		}
	})
}

// TestConcurrentForward runs one model from many goroutines at once, with
// batches big enough to take the parallel path and small enough not to.
// Run it with -race.
func TestConcurrentForward(t *testing.T) {
	layers := backendtest.RandomStack(3, []int{96, 512, 300, 10}, mixed[:3])
	forEachKernel(t, func(t *testing.T, _ *kernel) {
		m, err := New(WithWorkers(3)).Load(layers)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		defer m.Close()

		batches := []int{1, 2, 7, 64, 3, 33, 1, 16}
		var wg sync.WaitGroup
		for g, batch := range batches {
			rows := backendtest.RandomRows(uint64(100+g), batch*96)
			want := naiveForward(layers, rows, batch)
			wg.Go(func() {
				for range 5 {
					got, err := m.Forward(rows, batch)
					if err != nil {
						t.Errorf("goroutine %d: Forward: %v", g, err)
						return
					}
					checkClose(t, got, want)
				}
			})
		}
		wg.Wait()
	})
}

func TestLoadCopiesWeights(t *testing.T) {
	forEachKernel(t, func(t *testing.T, _ *kernel) {
		layers := backendtest.RandomStack(5, []int{9, 11}, mixed[:1])
		rows := backendtest.RandomRows(5, 3*9)
		want := naiveForward(layers, rows, 3)
		m, err := New().Load(layers)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		clear(layers[0].W)
		clear(layers[0].B)
		got, err := m.Forward(rows, 3)
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
		checkClose(t, got, want)
	})
}

// TestForwardAllocations checks that the scratch memory is pooled: a
// steady stream of Forward calls on the serial path allocates only the
// result. The layers are 60 wide, so the AVX2 kernel also goes through
// its copy of the last, partial panel.
func TestForwardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops pooled scratch at random")
	}
	layers := backendtest.RandomStack(6, []int{64, 60, 60, 60}, mixed[:3])
	rows := backendtest.RandomRows(6, 8*64)
	forEachKernel(t, func(t *testing.T, _ *kernel) {
		m, err := New(WithWorkers(1)).Load(layers)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := m.Forward(rows, 8); err != nil {
				t.Fatalf("Forward: %v", err)
			}
		})
		if allocs > 1 {
			t.Errorf("Forward allocates %v times per call, want 1 (the result)", allocs)
		}
	})
}

// TestActiveKernel checks that useSIMD switches Load between the kernels,
// and that a model keeps the kernel it was packed for.
func TestActiveKernel(t *testing.T) {
	defer func(old bool) { useSIMD = old }(useSIMD)
	want := simdKernel
	if want == nil {
		want = &scalarKernel
	}
	useSIMD = true
	if got := activeKernel(); got != want {
		t.Errorf("with useSIMD, activeKernel() = %s, want %s", got.name, want.name)
	}
	m, err := New().Load(backendtest.RandomStack(8, []int{3, 4}, mixed[:1]))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	useSIMD = false
	if got := activeKernel(); got != &scalarKernel {
		t.Errorf("without useSIMD, activeKernel() = %s, want scalar", got.name)
	}
	if got := m.(*model).layers[0].kernel; got != want {
		t.Errorf("after clearing useSIMD, a model loaded before runs %s, want %s", got.name, want.name)
	}
}
