// Package cpu is the pure-Go CPU backend of the inference server: dense
// layers, out = act(in · W + B), computed by a blocked, multi-core matrix
// multiply in float32.
//
// # Weight layout
//
// Load copies each layer's W ([In, Out], row-major) into panels of nr = 4
// output columns: panel p holds W[k][4p : 4p+4] for k = 0..In-1, one after
// another, so everything the micro-kernel reads of W is one contiguous
// stream. The last panel and the bias are zero-padded to whole panels. The
// input rows are not repacked: a kernel reads two of them as they are.
//
// # Micro-kernel
//
// kernel2x4 computes a 2 x 4 block of the output (mr x nr) over a range of
// the shared dimension, with its eight sums in local variables that the
// compiler keeps in registers, four steps of k unrolled and no bounds checks.
// The Go compiler does not vectorise, and a larger block does not fit its 15
// float registers; 2 x 4 runs at the scalar multiply-add peak of a core
// (about 13 GFLOP/s on the 2-core EPYC it was tuned on). kernel1x4 takes the
// odd row of an odd batch, and the whole of a batch of one.
//
// # Tiling
//
// The output is cut into tiles of at most mcMax = 64 rows x 256 columns
// (see plan.go). Inside a tile the shared dimension is walked in blocks of
// kcMax = 256; for each block, each panel's 4 KiB of weights is run against
// every row pair of the tile, so it is read from L1 after the first pair,
// while the tile's input block (64 KiB) and weights (256 KiB) stay in L2.
// The first block starts the sums from the bias; the last applies the
// activation as it stores them, so bias and activation cost no pass of
// their own. A tile of one row pair reuses no weights, so it walks each
// panel whole: its weights stream from memory as one run.
//
// # Parallel split
//
// A layer smaller than parallelMinFlops (2 x batch x In x Out < 2^20, e.g.
// any batch through 64-wide layers) runs on the caller's goroutine. A
// larger one is cut into at least 4 tiles per worker (columns are cut
// finer when the batch gives too few row tiles), and the caller plus
// workers-1 goroutines take tiles from an atomic counter until none are
// left; the layer ends when all are done.
//
// # Memory
//
// Forward allocates its result and nothing else on the serial path: the
// buffers that carry activations between layers, and the state of a layer's
// run, come from a per-model sync.Pool.
package cpu
