package cpu

import "testing"

// avx2Like is a kernel of the AVX2 kernel's shape, so that its plans are
// tested on every architecture; newPlan reads only mr, nr, kcMax and
// minParallel.
var avx2Like = &kernel{name: "6x16", mr: 6, nr: 16, kcMax: kcAVX2, minParallel: minParallelAVX2}

func TestPlan(t *testing.T) {
	cases := []struct {
		name                  string
		k                     *kernel
		batch, in, out        int
		maxWorkers            int
		wantWorkers           int
		wantTilesAtLeast      int
		wantRowsPerTile       int
		wantPanelsPerTileUpTo int
		wantKC                int
	}{
		{"batch 1 through 64 wide stays on the caller", &scalarKernel, 1, 64, 64, 8, 1, 1, 1, ncMax / 4, 64},
		{"batch 8 through 128 wide stays on the caller", &scalarKernel, 8, 128, 128, 2, 1, 1, 8, ncMax / 4, 128},
		{"batch 64 through 1024 uses both cores", &scalarKernel, 64, 1024, 1024, 2, 2, 2 * tilesPerWorker, 64, ncMax / 4, kcScalar},
		{"batch 64 through 1024 uses 16 cores", &scalarKernel, 64, 1024, 1024, 16, 16, 16 * tilesPerWorker, 64, ncMax / 4, kcScalar},
		{"batch 1 through 1024 splits columns", &scalarKernel, 1, 1024, 1024, 4, 4, 4 * tilesPerWorker, 1, ncMax / 4, 1024},
		{"batch 2 streams whole panels", &scalarKernel, 2, 1024, 1024, 2, 2, 2 * tilesPerWorker, 2, ncMax / 4, 1024},
		{"batch 257 splits rows evenly", &scalarKernel, 257, 640, 96, 2, 2, 5, 52, ncMax / 4, kcScalar},
		{"one worker", &scalarKernel, 64, 1024, 1024, 1, 1, 1, 64, ncMax / 4, kcScalar},
		{"more workers than columns", &scalarKernel, 1, 1 << 16, 8, 8, 2, 2, 1, 1, 1 << 16},

		{"6x16: batch 8 through 512 stays on the caller", avx2Like, 8, 512, 512, 2, 1, 1, 8, ncMax / 16, 512},
		{"6x16: batch 1 through 2048 uses both cores", avx2Like, 1, 2048, 2048, 2, 2, 2 * tilesPerWorker, 1, ncMax / 16, 2048},
		{"6x16: batch 1 streams whole panels", avx2Like, 1, 8192, 2048, 2, 2, 2 * tilesPerWorker, 1, ncMax / 16, 8192},
		{"6x16: batch 2 blocks the shared dimension", avx2Like, 2, 8192, 2048, 2, 2, 2 * tilesPerWorker, 2, ncMax / 16, kcAVX2},
		{"6x16: batch 6 streams whole panels", avx2Like, 6, 8192, 2048, 2, 2, 2 * tilesPerWorker, 6, ncMax / 16, 8192},
		{"6x16: batch 64 through 2048 uses both cores", avx2Like, 64, 2048, 2048, 2, 2, 2 * tilesPerWorker, 64, ncMax / 16, kcAVX2},
		{"6x16: batch 65 rounds row tiles up to 6", avx2Like, 65, 256, 256, 1, 1, 2, 36, ncMax / 16, 256},
		{"6x16: more workers than columns", avx2Like, 1, 1 << 20, 20, 8, 2, 2, 1, 1, 1 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlan(tc.k, tc.batch, tc.in, tc.out, tc.maxWorkers)
			if p.workers != tc.wantWorkers {
				t.Errorf("workers = %d, want %d", p.workers, tc.wantWorkers)
			}
			if p.tiles() < tc.wantTilesAtLeast {
				t.Errorf("tiles = %d, want at least %d", p.tiles(), tc.wantTilesAtLeast)
			}
			if p.rowsPerTile != tc.wantRowsPerTile {
				t.Errorf("rowsPerTile = %d, want %d", p.rowsPerTile, tc.wantRowsPerTile)
			}
			if p.panelsPerTile > tc.wantPanelsPerTileUpTo {
				t.Errorf("panelsPerTile = %d, want at most %d", p.panelsPerTile, tc.wantPanelsPerTileUpTo)
			}
			if p.kc != tc.wantKC {
				t.Errorf("kc = %d, want %d", p.kc, tc.wantKC)
			}
			panels := ceilDiv(tc.out, tc.k.nr)
			if p.rowTiles*p.rowsPerTile < tc.batch || (p.rowTiles-1)*p.rowsPerTile >= tc.batch {
				t.Errorf("%d row tiles of %d rows do not cover %d rows exactly", p.rowTiles, p.rowsPerTile, tc.batch)
			}
			if p.colTiles*p.panelsPerTile < panels || (p.colTiles-1)*p.panelsPerTile >= panels {
				t.Errorf("%d column tiles of %d panels do not cover %d panels exactly", p.colTiles, p.panelsPerTile, panels)
			}
		})
	}
}
