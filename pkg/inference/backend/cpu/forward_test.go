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

// shapeCases cover the edges of the tiling: dimensions of 1, odd and prime
// sizes, and sizes on either side of mr, nr, kcMax, mcMax and ncMaxPanels*nr.
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
	{"shared dim kcMax+1", 8, []int{kcMax + 1, 12}, mixed[:1]},
	{"shared dim 2kcMax+44", 7, []int{2*kcMax + 44, 33}, mixed[:1]},
	{"out one past a panel", 5, []int{16, 4*nr + 1}, mixed[:1]},
	{"out one short of a tile", 9, []int{40, ncMaxPanels*nr - 1}, mixed[3:4]},
	{"out one past a tile", 3, []int{40, ncMaxPanels*nr + 1}, mixed[:1]},
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
	for _, workers := range []int{1, 3} {
		b := New(WithWorkers(workers))
		for i, tc := range shapeCases {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				layers := backendtest.RandomStack(uint64(i), tc.widths, tc.acts)
				rows := backendtest.RandomRows(uint64(i), tc.batch*tc.widths[0])
				m, err := b.Load(layers)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				defer m.Close()
				got, err := m.Forward(rows, tc.batch)
				if err != nil {
					t.Fatalf("Forward: %v", err)
				}
				checkClose(t, got, naiveForward(layers, rows, tc.batch))
			})
		}
	}
}

// TestTilings runs one layer under plans that cut it very differently,
// including ones far too fine for newPlan to choose, on several
// goroutines: every tiling must give the same answer.
func TestTilings(t *testing.T) {
	const batch, in, out = 23, 2*kcMax + 3, 45 // 12 row pairs, 12 panels
	layers := backendtest.RandomStack(7, []int{in, out}, []backend.Activation{backend.Tanh})
	rows := backendtest.RandomRows(7, batch*in)
	want := naiveForward(layers, rows, batch)
	l := packLayer(layers[0])

	cases := []struct {
		name                       string
		rowsPerTile, panelsPerTile int
		kc                         int
		workers                    int
	}{
		{"one tile", batch, l.panels, kcMax, 1},
		{"one tile, shared dimension whole", batch, l.panels, in, 1},
		{"one tile, shared dimension in odd blocks", batch, l.panels, 7, 1},
		{"one tile per micro-tile", mr, 1, kcMax, 4},
		{"single rows", 1, 1, in, 3},
		{"odd rows, wide columns", 5, 7, kcMax, 2},
		{"row strips", 4, l.panels, kcMax, 2},
		{"column strips", batch, 2, kcMax, 2},
		{"more workers than tiles", batch, 6, kcMax, 8},
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
}

// TestConcurrentForward runs one model from many goroutines at once, with
// batches big enough to take the parallel path and small enough not to.
// Run it with -race.
func TestConcurrentForward(t *testing.T) {
	layers := backendtest.RandomStack(3, []int{96, 512, 300, 10}, mixed[:3])
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
}

func TestLoadCopiesWeights(t *testing.T) {
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
}

// TestForwardAllocations checks that the scratch memory is pooled: a
// steady stream of Forward calls on the serial path allocates only the
// result.
func TestForwardAllocations(t *testing.T) {
	layers := backendtest.RandomStack(6, []int{64, 64, 64, 64}, mixed[:3])
	m, err := New(WithWorkers(1)).Load(layers)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rows := backendtest.RandomRows(6, 8*64)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.Forward(rows, 8); err != nil {
			t.Fatalf("Forward: %v", err)
		}
	})
	if allocs > 1 {
		t.Errorf("Forward allocates %v times per call, want 1 (the result)", allocs)
	}
}
