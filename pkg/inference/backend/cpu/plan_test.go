package cpu

import "testing"

func TestPlan(t *testing.T) {
	cases := []struct {
		name                  string
		batch, in, out        int
		maxWorkers            int
		wantWorkers           int
		wantTilesAtLeast      int
		wantRowsPerTile       int
		wantPanelsPerTileUpTo int
		wantKC                int
	}{
		{"batch 1 through 64 wide stays on the caller", 1, 64, 64, 8, 1, 1, 1, ncMaxPanels, 64},
		{"batch 8 through 128 wide stays on the caller", 8, 128, 128, 2, 1, 1, 8, ncMaxPanels, 128},
		{"batch 64 through 1024 uses both cores", 64, 1024, 1024, 2, 2, 2 * tilesPerWorker, 64, ncMaxPanels, kcMax},
		{"batch 64 through 1024 uses 16 cores", 64, 1024, 1024, 16, 16, 16 * tilesPerWorker, 64, ncMaxPanels, kcMax},
		{"batch 1 through 1024 splits columns", 1, 1024, 1024, 4, 4, 4 * tilesPerWorker, 1, ncMaxPanels, 1024},
		{"batch 2 streams whole panels", 2, 1024, 1024, 2, 2, 2 * tilesPerWorker, 2, ncMaxPanels, 1024},
		{"batch 257 splits rows evenly", 257, 640, 96, 2, 2, 5, 52, ncMaxPanels, kcMax},
		{"one worker", 64, 1024, 1024, 1, 1, 1, 64, ncMaxPanels, kcMax},
		{"more workers than columns", 1, 1 << 16, 8, 8, 2, 2, 1, 1, 1 << 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlan(tc.batch, tc.in, tc.out, tc.maxWorkers)
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
			panels := ceilDiv(tc.out, nr)
			if p.rowTiles*p.rowsPerTile < tc.batch || (p.rowTiles-1)*p.rowsPerTile >= tc.batch {
				t.Errorf("%d row tiles of %d rows do not cover %d rows exactly", p.rowTiles, p.rowsPerTile, tc.batch)
			}
			if p.colTiles*p.panelsPerTile < panels || (p.colTiles-1)*p.panelsPerTile >= panels {
				t.Errorf("%d column tiles of %d panels do not cover %d panels exactly", p.colTiles, p.panelsPerTile, panels)
			}
		})
	}
}
