//go:build gc && !purego

package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

// TestAVX2Kernels checks gemm6x16 and gemm1x16 against their contract,
// for every remainder of kc mod 4 and every flag: the block they compute,
// and nothing written outside it. c's rows are wider than the block and
// surrounded by guard values that must come back untouched.
func TestAVX2Kernels(t *testing.T) {
	if simdKernel == nil {
		t.Skip("this CPU has no AVX2 and FMA")
	}
	const (
		lda   = 2055 // floats per input row, more than any kc below
		ldc   = 21   // floats per output row: 16 of the block and 5 of guard
		guard = 12345
	)
	kcs := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 2048, 2050}
	for _, rows := range []int{avx2MR, 1} {
		for _, kc := range kcs {
			for flags := range (fromBias | storeReLU) + 1 {
				t.Run(fmt.Sprintf("rows=%d/kc=%d/flags=%d", rows, kc, flags), func(t *testing.T) {
					seed := uint64(rows*10000 + kc*10 + flags)
					a := backendtest.RandomRows(seed, rows*lda)
					b := backendtest.RandomRows(seed+1, max(kc, 1)*avx2NR)
					bias := backendtest.RandomRows(seed+2, avx2NR)
					c := backendtest.RandomRows(seed+3, (rows+2)*ldc)
					// Row -1 and row rows of c, and columns 16..20 of
					// every row, are guard.
					for i := range c {
						if i < ldc || i >= (rows+1)*ldc || i%ldc >= avx2NR {
							c[i] = guard
						}
					}

					want := make([]float64, len(c))
					for i, v := range c {
						want[i] = float64(v)
					}
					for i := range rows {
						for j := range avx2NR {
							s := float64(c[(i+1)*ldc+j])
							if flags&fromBias != 0 {
								s = float64(bias[j])
							}
							for k := range kc {
								s += float64(a[i*lda+k]) * float64(b[k*avx2NR+j])
							}
							if flags&storeReLU != 0 {
								s = math.Max(s, 0)
							}
							want[(i+1)*ldc+j] = s
						}
					}

					if rows == avx2MR {
						gemm6x16(kc, &a[0], lda, &b[0], &c[ldc], ldc, &bias[0], flags)
					} else {
						gemm1x16(kc, &a[0], &b[0], &c[ldc], &bias[0], flags)
					}
					backendtest.CheckClose(t, c, want, relTol)
				})
			}
		}
	}
}

// TestAVX2ReLUKeepsNaN checks that the kernels' ReLU, like
// backend.ReLU.ApplyTo, passes NaN through instead of turning it into 0.
func TestAVX2ReLUKeepsNaN(t *testing.T) {
	if simdKernel == nil {
		t.Skip("this CPU has no AVX2 and FMA")
	}
	nan := float32(math.NaN())
	a := make([]float32, avx2MR)
	b := make([]float32, avx2NR)
	bias := make([]float32, avx2NR)
	bias[3] = nan
	bias[12] = -1
	c := make([]float32, avx2MR*avx2NR)
	gemm6x16(1, &a[0], 1, &b[0], &c[0], avx2NR, &bias[0], fromBias|storeReLU)
	for i := range avx2MR {
		if v := c[i*avx2NR+3]; !math.IsNaN(float64(v)) {
			t.Errorf("gemm6x16: row %d, column 3 = %g, want NaN", i, v)
		}
		if v := c[i*avx2NR+12]; v != 0 {
			t.Errorf("gemm6x16: row %d, column 12 = %g, want 0", i, v)
		}
	}
	gemm1x16(1, &a[0], &b[0], &c[0], &bias[0], fromBias|storeReLU)
	if v := c[3]; !math.IsNaN(float64(v)) {
		t.Errorf("gemm1x16: column 3 = %g, want NaN", v)
	}
}
