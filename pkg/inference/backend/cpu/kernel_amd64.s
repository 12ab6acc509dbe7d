//go:build gc && !purego

#include "textflag.h"

// The AVX2 + FMA micro-kernels. Both compute rows of a 16-column block of
// the output over kc steps of the shared dimension, reading the weights
// from one packed panel (b: 16 floats per step, contiguous) and the input
// rows as they are in memory (a: one float per step and row, broadcast to
// all eight lanes). flags bit 0 starts the sums from bias[0:16] instead of
// the block already in c; bit 1 applies ReLU as the sums are stored. See
// kernel_amd64.go for the Go side and the register plan.

// STEP6 is one step of the shared dimension for six rows: two loads of the
// panel and, per row, a broadcast of its input and two multiply-adds.
// ao is the byte offset of the step in the input rows, bo in the panel.
// Y0-Y11 hold the sums (row i in Y(2i), Y(2i+1)); Y12, Y13 the weights;
// Y14, Y15 the broadcasts, alternating so that a row's broadcast can load
// while the previous row's multiply-adds run. Rows 0-2 are at R8, R8+lda,
// R8+2lda and rows 3-5 at R9, R9+lda, R9+2lda (R10 = lda in bytes).
#define STEP6(ao, bo) \
	VMOVUPS      bo(BX), Y12;           \
	VMOVUPS      bo+32(BX), Y13;        \
	VBROADCASTSS ao(R8), Y14;           \
	VFMADD231PS  Y12, Y14, Y0;          \
	VFMADD231PS  Y13, Y14, Y1;          \
	VBROADCASTSS ao(R8)(R10*1), Y15;    \
	VFMADD231PS  Y12, Y15, Y2;          \
	VFMADD231PS  Y13, Y15, Y3;          \
	VBROADCASTSS ao(R8)(R10*2), Y14;    \
	VFMADD231PS  Y12, Y14, Y4;          \
	VFMADD231PS  Y13, Y14, Y5;          \
	VBROADCASTSS ao(R9), Y15;           \
	VFMADD231PS  Y12, Y15, Y6;          \
	VFMADD231PS  Y13, Y15, Y7;          \
	VBROADCASTSS ao(R9)(R10*1), Y14;    \
	VFMADD231PS  Y12, Y14, Y8;          \
	VFMADD231PS  Y13, Y14, Y9;          \
	VBROADCASTSS ao(R9)(R10*2), Y15;    \
	VFMADD231PS  Y12, Y15, Y10;         \
	VFMADD231PS  Y13, Y15, Y11

// func gemm6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, bias *float32, flags int)
TEXT ·gemm6x16(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ lda+16(FP), R10
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), R11
	MOVQ bias+48(FP), SI
	MOVQ flags+56(FP), DX

	SHLQ $2, R10           // lda in bytes
	SHLQ $2, R11           // ldc in bytes
	LEAQ (R8)(R10*2), R9
	ADDQ R10, R9           // R9: row 3 of a
	LEAQ (DI)(R11*2), R12
	ADDQ R11, R12          // R12: row 3 of c

	TESTQ $1, DX
	JZ    load6
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y1, Y3
	VMOVAPS Y0, Y4
	VMOVAPS Y1, Y5
	VMOVAPS Y0, Y6
	VMOVAPS Y1, Y7
	VMOVAPS Y0, Y8
	VMOVAPS Y1, Y9
	VMOVAPS Y0, Y10
	VMOVAPS Y1, Y11
	JMP     loop6

load6:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS (DI)(R11*1), Y2
	VMOVUPS 32(DI)(R11*1), Y3
	VMOVUPS (DI)(R11*2), Y4
	VMOVUPS 32(DI)(R11*2), Y5
	VMOVUPS (R12), Y6
	VMOVUPS 32(R12), Y7
	VMOVUPS (R12)(R11*1), Y8
	VMOVUPS 32(R12)(R11*1), Y9
	VMOVUPS (R12)(R11*2), Y10
	VMOVUPS 32(R12)(R11*2), Y11

loop6:
	CMPQ CX, $4
	JLT  tail6
	STEP6(0, 0)
	STEP6(4, 64)
	STEP6(8, 128)
	STEP6(12, 192)
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $256, BX
	SUBQ $4, CX
	JMP  loop6

tail6:
	TESTQ CX, CX
	JZ    store6
	STEP6(0, 0)
	ADDQ  $4, R8
	ADDQ  $4, R9
	ADDQ  $64, BX
	DECQ  CX
	JMP   tail6

store6:
	TESTQ  $2, DX
	JZ     write6
	// max(0, x) with x the second source, so that NaN stays NaN as in Go.
	VXORPS Y12, Y12, Y12
	VMAXPS Y0, Y12, Y0
	VMAXPS Y1, Y12, Y1
	VMAXPS Y2, Y12, Y2
	VMAXPS Y3, Y12, Y3
	VMAXPS Y4, Y12, Y4
	VMAXPS Y5, Y12, Y5
	VMAXPS Y6, Y12, Y6
	VMAXPS Y7, Y12, Y7
	VMAXPS Y8, Y12, Y8
	VMAXPS Y9, Y12, Y9
	VMAXPS Y10, Y12, Y10
	VMAXPS Y11, Y12, Y11

write6:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R11*1)
	VMOVUPS Y3, 32(DI)(R11*1)
	VMOVUPS Y4, (DI)(R11*2)
	VMOVUPS Y5, 32(DI)(R11*2)
	VMOVUPS Y6, (R12)
	VMOVUPS Y7, 32(R12)
	VMOVUPS Y8, (R12)(R11*1)
	VMOVUPS Y9, 32(R12)(R11*1)
	VMOVUPS Y10, (R12)(R11*2)
	VMOVUPS Y11, 32(R12)(R11*2)
	VZEROUPPER
	RET

// func gemm1x16(kc int, a *float32, b *float32, c *float32, bias *float32, flags int)
//
// One row: the sums of steps k = 0, 1, 2, 3 mod 4 go to four pairs of
// registers (Y0-Y7), so that four chains of multiply-adds are in flight
// instead of one, and are added together at the end.
TEXT ·gemm1x16(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ bias+32(FP), SI
	MOVQ flags+40(FP), DX

	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ  $1, DX
	JZ     load1
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	JMP     loop1

load1:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1

loop1:
	CMPQ         CX, $4
	JLT          tail1
	VBROADCASTSS (R8), Y8
	VBROADCASTSS 4(R8), Y9
	VBROADCASTSS 8(R8), Y10
	VBROADCASTSS 12(R8), Y11
	VFMADD231PS  (BX), Y8, Y0
	VFMADD231PS  32(BX), Y8, Y1
	VFMADD231PS  64(BX), Y9, Y2
	VFMADD231PS  96(BX), Y9, Y3
	VFMADD231PS  128(BX), Y10, Y4
	VFMADD231PS  160(BX), Y10, Y5
	VFMADD231PS  192(BX), Y11, Y6
	VFMADD231PS  224(BX), Y11, Y7
	ADDQ         $16, R8
	ADDQ         $256, BX
	SUBQ         $4, CX
	JMP          loop1

tail1:
	TESTQ        CX, CX
	JZ           sum1
	VBROADCASTSS (R8), Y8
	VFMADD231PS  (BX), Y8, Y0
	VFMADD231PS  32(BX), Y8, Y1
	ADDQ         $4, R8
	ADDQ         $64, BX
	DECQ         CX
	JMP          tail1

sum1:
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y6, Y4, Y4
	VADDPS Y7, Y5, Y5
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	TESTQ  $2, DX
	JZ     write1
	VXORPS Y12, Y12, Y12
	VMAXPS Y0, Y12, Y0
	VMAXPS Y1, Y12, Y1

write1:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET
