// Package cpu is the CPU backend of the inference server, in Go and Go
// assembly (no cgo): dense layers, out = act(in · W + B), computed by a
// blocked, multi-core matrix multiply in float32.
//
// # Kernels
//
// Two micro-kernels compute the blocks of the output; Load picks one for a
// model and packs the model's weights for it (kernel.go):
//
//   - avx2 (kernel_amd64.go, kernel_amd64.s), on amd64 CPUs with AVX2 and
//     FMA, as golang.org/x/sys/cpu reports them: Go assembly that keeps a
//     6 x 16 block of the output in 12 YMM registers, broadcasts one
//     input per row and step and multiply-adds it with the step's 16
//     weights, two 8-float FMAs per row. gemm1x16 takes the rows of a
//     batch that do not fill a block of six, and the whole of a batch of
//     one. It runs at about 105 GFLOP/s per core on the 2-core EPYC it was
//     tuned on, about 10 times the scalar kernel.
//   - scalar (kernel_scalar.go), everywhere else: a 2 x 4 block in local
//     variables that the compiler keeps in registers, four steps of k
//     unrolled and no bounds checks, at the scalar multiply-add peak of
//     a core (about 13 GFLOP/s). kernel1x4 takes the odd row of an odd
//     batch, and the whole of a batch of one.
//
// Builds with the purego tag, or by gccgo, have only the scalar kernel.
// Tests clear useSIMD to force it on a CPU that has AVX2.
//
// # Weight layout
//
// Load copies each layer's W ([In, Out], row-major) into panels of nr
// output columns, nr = 16 for avx2 and 4 for scalar: panel p holds
// W[k][nr·p : nr·p+nr] for k = 0..In-1, one after another, so everything a
// micro-kernel reads of W is one contiguous stream. The last panel and the
// bias are zero-padded to whole panels. The input rows are not repacked:
// the kernels read them as they are, row by row.
//
// # Tiling
//
// The output is cut into tiles of at most mcMax = 64 rows (rounded up to
// whole blocks of rows) x 256 columns (see plan.go). Inside a tile the
// shared dimension is walked in blocks of kc; for each block, each panel's
// weights are run against every block of rows of the tile. The scalar
// kernel takes kc = 256, so that a panel's 4 KiB block is read from L1
// after the first row pair; the avx2 kernel needs few enough bytes per
// multiply-add to be fed from L2, and takes kc = 2048, keeping a panel's
// 128 KiB block and the tile's 512 KiB of input there. The first block
// starts the sums from the bias; the last applies the activation as it
// stores them (ReLU inside the avx2 kernel, sigmoid and tanh in Go after
// it), so bias and ReLU cost no pass of their own. A tile whose rows take
// one kernel call per panel reuses no weights, so it walks each panel
// whole: its weights stream from memory as one run. The avx2 kernel
// writes 16 columns at a time; the last panel of a layer whose width is
// not a multiple of 16 is computed into a 6 x 16 buffer on the stack and
// its columns that exist copied out.
//
// # Parallel split
//
// A layer smaller than the kernel's minParallel (2 x batch x In x Out <
// 2^20 for scalar, 2^23 for avx2: about 80µs of work on one core) runs on
// the caller's goroutine. A larger one is cut into at least 4 tiles per
// worker (columns are cut finer when the batch gives too few row tiles),
// and the caller plus workers-1 goroutines take tiles from an atomic
// counter until none are left; the layer ends when all are done.
//
// # Memory
//
// Forward allocates its result and nothing else on the serial path: the
// buffers that carry activations between layers, and the state of a layer's
// run, come from a per-model sync.Pool.
package cpu
