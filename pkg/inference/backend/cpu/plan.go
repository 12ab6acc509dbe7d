package cpu

// Cache blocking and the parallel split. A tile is a block of the output of
// at most mcMax rows x ncMaxPanels*nr columns; inside a tile the shared
// dimension is walked in blocks of kcMax.
//
// With kcMax = 256: one panel's block of weights (kcMax x nr floats, 4 KiB)
// stays in L1 while the micro-kernel runs it against every row pair of the
// tile; the tile's rows of input (mcMax x kcMax floats, 64 KiB) and its
// weights (kcMax x ncMaxPanels*nr floats, 256 KiB) stay in L2 while the
// panels are walked.
const (
	kcMax       = 256
	mcMax       = 64
	ncMaxPanels = 64

	// parallelMinFlops is the smallest layer, in floating-point operations
	// (2 x batch x in x out), that is split across goroutines: about 80µs
	// on one core, against the few µs it takes to wake another.
	parallelMinFlops = 1 << 20
	// tilesPerWorker is how many tiles a parallel layer is cut into per
	// goroutine, so that goroutines that finish first take the remaining
	// tiles instead of waiting for a straggler.
	tilesPerWorker = 4
)

// plan is how one layer of one Forward call is cut into tiles and spread
// over goroutines. Tile t covers row tile t / colTiles and column tile
// t % colTiles.
type plan struct {
	rowsPerTile   int // a multiple of mr, unless the batch is smaller
	panelsPerTile int
	rowTiles      int
	colTiles      int
	// kc is the block of the shared dimension.
	kc int
	// workers is how many goroutines run the tiles, the caller's included;
	// 1 runs them all on the caller's goroutine.
	workers int
}

func newPlan(batch, in, out, maxWorkers int) plan {
	// Rows: as few tiles of at most mcMax rows as will do, evened out so
	// that a batch of 65 is not cut into 64 + 1.
	rowTiles := ceilDiv(batch, mcMax)
	rowsPerTile := min(batch, roundUp(ceilDiv(batch, rowTiles), mr))
	rowTiles = ceilDiv(batch, rowsPerTile)

	// Columns: tiles of at most ncMaxPanels panels, cut finer when there
	// are too few tiles to keep every worker busy.
	panels := ceilDiv(out, nr)
	colTiles := ceilDiv(panels, ncMaxPanels)
	workers := 1
	if maxWorkers > 1 && 2*batch*in*out >= parallelMinFlops {
		workers = maxWorkers
		if want := tilesPerWorker * workers; rowTiles*colTiles < want {
			colTiles = min(panels, max(colTiles, ceilDiv(want, rowTiles)))
		}
	}
	panelsPerTile := ceilDiv(panels, colTiles)
	colTiles = ceilDiv(panels, panelsPerTile)

	// A tile of a single row pair reads each weight once: blocking the
	// shared dimension buys it no reuse, and walking each panel whole lets
	// it stream the tile's weights as one contiguous run.
	kc := min(in, kcMax)
	if rowsPerTile <= mr {
		kc = in
	}

	return plan{
		rowsPerTile:   rowsPerTile,
		panelsPerTile: panelsPerTile,
		rowTiles:      rowTiles,
		colTiles:      colTiles,
		kc:            kc,
		workers:       min(workers, rowTiles*colTiles),
	}
}

func (p plan) tiles() int { return p.rowTiles * p.colTiles }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }
