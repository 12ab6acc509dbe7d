//go:build gc && !purego

package cpu

import (
	"golang.org/x/sys/cpu"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// Register blocking of the AVX2 kernel. gemm6x16 keeps a 6 x 16 block of
// the output in 12 YMM registers (two of 8 floats per row) for a whole run
// over the shared dimension; each step loads the panel's 16 weights into
// two more and broadcasts each row's input into the last two, so the
// kernel uses all 16 YMM registers and never spills. Twelve independent
// chains of multiply-adds cover the latency of the FMA units (4 cycles,
// 2 units on the CPUs this targets), and a step's 12 multiply-adds take 8
// loads, within what the load ports issue alongside them.
const (
	avx2MR = 6  // rows of the output per gemm6x16 call
	avx2NR = 16 // columns of the output per call, the panel width
)

// Flags of gemm6x16 and gemm1x16.
const (
	// fromBias starts the sums from the bias instead of the block in c.
	fromBias = 1 << iota
	// storeReLU applies ReLU as the sums are stored.
	storeReLU
)

// gemm6x16 computes, for the six rows i = 0..5 and the 16 columns
// j = 0..15 of a block of the output,
//
//	c[i*ldc+j] = act(s + sum over k < kc of a[i*lda+k] * b[k*16+j])
//
// where s is bias[j] if flags has fromBias and c[i*ldc+j] if not, and act
// is ReLU if flags has storeReLU and the identity if not. b is kc steps of
// one packed panel. lda and ldc count floats. Implemented in
// kernel_amd64.s.
//
//go:noescape
func gemm6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, flags int)

// gemm1x16 is gemm6x16 for a single row: the rows of a batch that do not
// fill a gemm6x16 call, and the whole of a batch of one. Implemented in
// kernel_amd64.s.
//
//go:noescape
func gemm1x16(kc int, a *float32, b *float32, c *float32, bias *float32, flags int)

// avx2Kernel runs gemm6x16 and gemm1x16 over panels of 16 columns.
var avx2Kernel = kernel{
	name:        "avx2",
	mr:          avx2MR,
	nr:          avx2NR,
	kcMax:       kcAVX2,
	minParallel: minParallelAVX2,
	tile:        (*layerRun).tileAVX2,
}

// simdKernel is avx2Kernel on a CPU with AVX2 and FMA (and an OS that
// saves the YMM registers, which cpu.X86.HasAVX2 checks), nil elsewhere.
var simdKernel = func() *kernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return &avx2Kernel
	}
	return nil
}()

// tileAVX2 computes tile t with the AVX2 kernels, in the order tileScalar
// uses: blocks of the shared dimension, then panels, then blocks of six
// rows, so that a panel's block of weights (kc x 16 floats) is read from
// L2 after the first call (see plan.go). The kernels start the sums from
// the bias on the first block and apply ReLU on the last; sigmoid and
// tanh are applied here, after the last block.
func (r *layerRun) tileAVX2(t int) {
	l, kc := r.l, r.plan.kc
	r0, r1, p0, p1 := r.bounds(t)
	in, out := l.in, l.out
	// The kernels read and write through pointers: check once here that
	// everything the tile reaches is in bounds. s[n:] checks n <= len(s)
	// and, unlike s[n-1], reads nothing: another tile may be writing
	// r.out[n-1].
	_, _, _ = r.in[r1*in:], r.out[r1*out:], l.w[p1*in*avx2NR:]

	for k0 := 0; k0 < in; k0 += kc {
		k1 := min(in, k0+kc)
		n := k1 - k0
		flags := 0
		if k0 == 0 {
			flags |= fromBias
		}
		last := k1 == in
		if last && l.act == backend.ReLU {
			flags |= storeReLU
		}
		activate := last && l.act != backend.ReLU && l.act != backend.Identity
		for pi := p0; pi < p1; pi++ {
			w := &l.w[(pi*in+k0)*avx2NR]
			bias := &l.bias[pi*avx2NR]
			c0 := pi * avx2NR
			c1 := min(out, c0+avx2NR)
			if c1-c0 < avx2NR {
				r.edgeAVX2(r0, r1, c0, c1, k0, n, w, bias, flags)
			} else {
				i := r0
				for ; i+avx2MR <= r1; i += avx2MR {
					gemm6x16(n, &r.in[i*in+k0], in, w, &r.out[i*out+c0], out, bias, flags)
				}
				for ; i < r1; i++ {
					gemm1x16(n, &r.in[i*in+k0], w, &r.out[i*out+c0], bias, flags)
				}
			}
			if activate {
				for i := r0; i < r1; i++ {
					l.act.ApplyTo(r.out[i*out+c0 : i*out+c1])
				}
			}
		}
	}
}

// edgeAVX2 is the inner loop of tileAVX2 for the last panel of a layer
// whose width is not a multiple of 16: the kernels store 16 columns, so
// they run on a copy of the block of the output, of which only columns
// [c0, c1) are copied back.
func (r *layerRun) edgeAVX2(r0, r1, c0, c1, k0, n int, w, bias *float32, flags int) {
	in, out := r.l.in, r.l.out
	var buf [avx2MR * avx2NR]float32
	for i := r0; i < r1; i += avx2MR {
		rows := min(avx2MR, r1-i)
		if flags&fromBias == 0 {
			for j := range rows {
				copy(buf[j*avx2NR:], r.out[(i+j)*out+c0:(i+j)*out+c1])
			}
		}
		if rows == avx2MR {
			gemm6x16(n, &r.in[i*in+k0], in, w, &buf[0], avx2NR, bias, flags)
		} else {
			for j := range rows {
				gemm1x16(n, &r.in[(i+j)*in+k0], w, &buf[j*avx2NR], bias, flags)
			}
		}
		for j := range rows {
			copy(r.out[(i+j)*out+c0:(i+j)*out+c1], buf[j*avx2NR:])
		}
	}
}
