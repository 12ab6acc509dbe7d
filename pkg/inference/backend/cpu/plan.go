package cpu

// Cache blocking and the parallel split. A tile is a block of the output of
// at most about mcMax rows (rounded up to whole micro-kernel calls) x ncMax
// columns; inside a tile the shared dimension is walked in blocks of the
// kernel's kcMax, which is where the two kernels differ.
//
// The scalar kernel blocks for L1, with kcMax = kcScalar = 256: one
// panel's block of weights (256 x 4 floats, 4 KiB) stays in L1 while the
// micro-kernel runs it against every row pair of the tile; the tile's rows
// of input (mcMax x 256 floats, 64 KiB) and its weights (256 x ncMax
// floats, 256 KiB) stay in L2 while the panels are walked.
//
// The AVX2 kernel needs far fewer bytes per multiply-add than L2 delivers
// (64 bytes of weights and 24 of input per 6 cycles of 12 FMAs), so it
// blocks for L2, with kcMax = kcAVX2 = 2048: a panel's block of weights
// (2048 x 16 floats, 128 KiB) and the tile's rows of input (mcMax x 2048
// floats, 512 KiB) stay in a 1-2 MiB L2. Blocks this long also keep each
// panel one contiguous stream from memory and start and store the 12
// accumulators rarely. Measured on the 2-core EPYC (Zen 5, 2 MiB L2) with
// 4 layers of 2048 columns, kcMax = 256 gave 185 GFLOP/s at batch 64 and
// 55 at batch 8; 2048 gives 215 and 115.
const (
	kcScalar = 256
	kcAVX2   = 2048
	mcMax    = 64
	ncMax    = 256

	// minParallelScalar and minParallelAVX2 are the smallest layer, in
	// floating-point operations (2 x batch x in x out), that each kernel
	// splits across goroutines: about 80µs on one core, against the tens
	// of µs it can take to wake another (this VM's idle vCPUs are slow to
	// wake). Measured with AVX2 on 2 cores: 256-wide layers at batch 8
	// (2^20) ran 10 % slower split than not; 512-wide ones at batch 16
	// (2^23) 7 % faster; a batch of one through 1024 x 1024 (2^21, in L3)
	// 10 % slower, through 2048 x 2048 (2^23, from memory) 25 % faster.
	minParallelScalar = 1 << 20
	minParallelAVX2   = 1 << 23
	// tilesPerWorker is how many tiles a parallel layer is cut into per
	// goroutine, so that goroutines that finish first take the remaining
	// tiles instead of waiting for a straggler.
	tilesPerWorker = 4
)

// plan is how one layer of one Forward call is cut into tiles and spread
// over goroutines. Tile t covers row tile t / colTiles and column tile
// t % colTiles.
type plan struct {
	rowsPerTile   int // a multiple of the kernel's mr, unless the batch is smaller
	panelsPerTile int
	rowTiles      int
	colTiles      int
	// kc is the block of the shared dimension.
	kc int
	// workers is how many goroutines run the tiles, the caller's included;
	// 1 runs them all on the caller's goroutine.
	workers int
}

func newPlan(k *kernel, batch, in, out, maxWorkers int) plan {
	// Rows: as few tiles of at most mcMax rows as will do, evened out so
	// that a batch of 65 is not cut into 64 + 1.
	rowTiles := ceilDiv(batch, mcMax)
	rowsPerTile := min(batch, roundUp(ceilDiv(batch, rowTiles), k.mr))
	rowTiles = ceilDiv(batch, rowsPerTile)

	// Columns: tiles of at most ncMax columns, cut finer when there are too
	// few tiles to keep every worker busy.
	panels := ceilDiv(out, k.nr)
	colTiles := ceilDiv(panels, ncMax/k.nr)
	workers := 1
	if maxWorkers > 1 && 2*batch*in*out >= k.minParallel {
		workers = maxWorkers
		if want := tilesPerWorker * workers; rowTiles*colTiles < want {
			colTiles = min(panels, max(colTiles, ceilDiv(want, rowTiles)))
		}
	}
	panelsPerTile := ceilDiv(panels, colTiles)
	colTiles = ceilDiv(panels, panelsPerTile)

	// A tile whose rows take one micro-kernel call per panel reads each
	// weight once: blocking the shared dimension buys it no reuse, and
	// walking each panel whole lets it stream the tile's weights as one
	// contiguous run.
	kc := min(in, k.kcMax)
	if k.calls(rowsPerTile) <= 1 {
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
