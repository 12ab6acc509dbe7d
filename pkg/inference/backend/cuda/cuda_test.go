package cuda

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
)

// The fake's sgemm accumulates in float32 like cuBLAS; the reference is float64.
const fakeTolerance = 1e-4

var allActivations = []backend.Activation{backend.Identity, backend.ReLU, backend.Sigmoid, backend.Tanh}

func TestForwardMatchesReference(t *testing.T) {
	cases := []struct {
		name   string
		widths []int
		acts   []backend.Activation
	}{
		{"1x1", []int{1, 1}, []backend.Activation{backend.Identity}},
		{"3x5x7", []int{3, 5, 7}, []backend.Activation{backend.ReLU, backend.Sigmoid}},
		{"odd widths", []int{17, 31, 9}, []backend.Activation{backend.Tanh, backend.Identity}},
		{"4-layer MLP, every activation", []int{16, 33, 17, 9, 4}, allActivations},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			b := f.open(t)
			layers := backendtest.RandomStack(1, tc.widths, tc.acts)
			m, err := b.Load(layers)
			if err != nil {
				t.Fatal(err)
			}
			// 64 grows the activation buffers; 7 then reuses them.
			results := map[int][]float32{}
			for _, batch := range []int{1, 64, 7} {
				rows := backendtest.RandomRows(uint64(batch), batch*tc.widths[0])
				sgemms := f.sgemmCalls()
				got, err := m.Forward(rows, batch)
				if err != nil {
					t.Fatalf("batch %d: %v", batch, err)
				}
				backendtest.CheckClose(t, got, backendtest.Reference(layers, rows, batch), fakeTolerance)
				if n := f.sgemmCalls() - sgemms; int(n) != len(layers) {
					t.Errorf("batch %d: %d sgemm calls, want one per layer (%d)", batch, n, len(layers))
				}
				results[batch] = got
			}
			// The results belong to the caller: later calls leave them alone.
			for batch, got := range results {
				rows := backendtest.RandomRows(uint64(batch), batch*tc.widths[0])
				backendtest.CheckClose(t, got, backendtest.Reference(layers, rows, batch), fakeTolerance)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWeightsUploadedOnce(t *testing.T) {
	f := newFake(t)
	b := f.open(t)
	// Sizes chosen so that weight and input copies differ in bytes:
	// weights (5+1)x6 and (6+1)x3; inputs 4x(5+1) and 4x(6+1).
	layers := backendtest.RandomStack(2, []int{5, 6, 3}, []backend.Activation{backend.ReLU, backend.Identity})
	const batch = 4
	weightBytes := []uintptr{6 * 6 * 4, 7 * 3 * 4}
	inputBytes := uint64(batch*6*4 + batch*7*4)
	outputBytes := uint64(batch*6*4 + batch*3*4)

	m, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	loadCopies, loadBytes := f.memcpyCalls(1), f.memcpyBytes(1)
	if loadCopies != 2 || loadBytes != uint64(weightBytes[0]+weightBytes[1]) {
		t.Fatalf("Load made %d host-to-device copies of %d bytes, want 2 of %d", loadCopies, loadBytes, weightBytes[0]+weightBytes[1])
	}

	const forwards = 50
	rows := backendtest.RandomRows(3, batch*5)
	for range forwards {
		if _, err := m.Forward(rows, batch); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range weightBytes {
		if c := f.h2dCopiesOf(n); c != 1 {
			t.Errorf("layer %d weights (%d bytes) copied to the device %d times, want once", i, n, c)
		}
	}
	if got, want := f.memcpyCalls(1)-loadCopies, int32(forwards*len(layers)); got != want {
		t.Errorf("%d Forwards made %d host-to-device copies, want %d (one input per layer)", forwards, got, want)
	}
	if got, want := f.memcpyBytes(1)-loadBytes, forwards*inputBytes; got != want {
		t.Errorf("%d Forwards copied %d bytes to the device, want %d (inputs only)", forwards, got, want)
	}
	if got, want := f.memcpyBytes(2), forwards*outputBytes; got != want {
		t.Errorf("%d Forwards copied %d bytes from the device, want %d", forwards, got, want)
	}
}

func TestCloseFreesEverything(t *testing.T) {
	f := newFake(t)
	b, err := Open(WithLibraries(f.cudart, f.cublas))
	if err != nil {
		t.Fatal(err)
	}
	layers := backendtest.RandomStack(4, []int{3, 4, 2}, []backend.Activation{backend.Tanh, backend.Sigmoid})
	rows := backendtest.RandomRows(5, 2*3)
	m1, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Forward(rows, 2); err != nil {
		t.Fatal(err)
	}
	m2, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Forward(rows, 2); err != nil {
		t.Fatal(err)
	}
	// Two weight matrices and two activation buffers per model.
	if n := f.liveAllocations(); n != 8 {
		t.Errorf("%d live allocations with two models, want 8", n)
	}

	for range 2 {
		if err := m1.Close(); err != nil {
			t.Errorf("closing a model: %v", err)
		}
	}
	if n := f.liveAllocations(); n != 4 {
		t.Errorf("%d live allocations after closing one model, want 4", n)
	}
	if _, err := m1.Forward(rows, 2); !errors.Is(err, errClosed) {
		t.Errorf("Forward after Close = %v, want an error saying the model is closed", err)
	}

	// Closing the backend frees the model still open and the handle.
	for range 2 {
		if err := b.Close(); err != nil {
			t.Errorf("closing the backend: %v", err)
		}
	}
	if n := f.liveAllocations(); n != 0 {
		t.Errorf("%d live allocations after Backend.Close, want 0", n)
	}
	if n := f.liveHandles(); n != 0 {
		t.Errorf("%d cuBLAS handles after Backend.Close, want 0", n)
	}
	if err := m2.Close(); err != nil {
		t.Errorf("closing a model after its backend: %v", err)
	}
	if _, err := m2.Forward(rows, 2); !errors.Is(err, errClosed) {
		t.Errorf("Forward after Backend.Close = %v, want an error", err)
	}
	if _, err := b.Load(layers); !errors.Is(err, errClosed) {
		t.Errorf("Load after Backend.Close = %v, want an error", err)
	}
	if _, _, _, _, err := b.Info(); !errors.Is(err, errClosed) {
		t.Errorf("Info after Backend.Close = %v, want an error", err)
	}
}

// A failure part way through Load frees what Load allocated, and the backend
// still loads models afterwards.
func TestLoadFailureLeaksNothing(t *testing.T) {
	cases := []struct {
		name       string
		fn         string
		skip, code int32
		want       []string
	}{
		{"first allocation", "cudaMalloc", 0, 2, []string{"layer 0 weights", "cudaMalloc", "out of memory (cudaError_t 2)"}},
		{"last allocation", "cudaMalloc", 2, 2, []string{"layer 2 weights", "cudaMalloc", "out of memory"}},
		{"first copy", "cudaMemcpy", 0, 1, []string{"layer 0 weights", "cudaMemcpy", "invalid argument"}},
		{"second copy", "cudaMemcpy", 1, 1, []string{"layer 1 weights", "cudaMemcpy", "invalid argument"}},
		{"device selection", "cudaSetDevice", 0, 101, []string{"cudaSetDevice", "invalid device ordinal"}},
	}
	layers := backendtest.RandomStack(6, []int{4, 8, 8, 2}, []backend.Activation{backend.ReLU, backend.ReLU, backend.Identity})
	rows := backendtest.RandomRows(7, 3*4)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			b := f.open(t)
			f.failAfter(tc.fn, tc.skip, tc.code)
			_, err := b.Load(layers)
			if err == nil {
				t.Fatalf("Load succeeded although %s failed", tc.fn)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := f.liveAllocations(); n != 0 {
				t.Errorf("%d device allocations left after the failed Load", n)
			}
			m, err := b.Load(layers)
			if err != nil {
				t.Fatalf("Load after a failed one: %v", err)
			}
			defer m.Close()
			got, err := m.Forward(rows, 3)
			if err != nil {
				t.Fatal(err)
			}
			backendtest.CheckClose(t, got, backendtest.Reference(layers, rows, 3), fakeTolerance)
		})
	}
}

// A failing call in Forward is reported with the call's name and leaves the
// model working.
func TestForwardFailureRecovers(t *testing.T) {
	cases := []struct {
		name       string
		fn         string
		skip, code int32
		want       []string
	}{
		{"sgemm layer 0", "cublasSgemm_v2", 0, 13, []string{"layer 0", "cublasSgemm_v2", "CUBLAS_STATUS_EXECUTION_FAILED (13)"}},
		{"sgemm layer 2", "cublasSgemm_v2", 2, 14, []string{"layer 2", "cublasSgemm_v2", "CUBLAS_STATUS_INTERNAL_ERROR (14)"}},
		{"input copy", "cudaMemcpy", 0, 1, []string{"layer 0", "cudaMemcpy", "invalid argument"}},
		{"output copy", "cudaMemcpy", 3, 1, []string{"layer 1", "cudaMemcpy", "invalid argument"}},
		{"buffer allocation", "cudaMalloc", 1, 2, []string{"output buffer", "cudaMalloc", "out of memory"}},
		{"device selection", "cudaSetDevice", 0, 101, []string{"cudaSetDevice", "invalid device ordinal"}},
	}
	layers := backendtest.RandomStack(8, []int{6, 5, 4, 3}, []backend.Activation{backend.Sigmoid, backend.Tanh, backend.ReLU})
	rows := backendtest.RandomRows(9, 5*6)
	want := backendtest.Reference(layers, rows, 5)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			b := f.open(t)
			m, err := b.Load(layers)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			f.failAfter(tc.fn, tc.skip, tc.code)
			_, err = m.Forward(rows, 5)
			if err == nil {
				t.Fatalf("Forward succeeded although %s failed", tc.fn)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for range 2 {
				got, err := m.Forward(rows, 5)
				if err != nil {
					t.Fatalf("Forward after a failed one: %v", err)
				}
				backendtest.CheckClose(t, got, want, fakeTolerance)
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	cases := []struct {
		name        string
		devices     int32
		fn          string
		code        int32
		opts        []Option
		unavailable bool
		want        []string
	}{
		{name: "zero devices", devices: 0, unavailable: true,
			want: []string{"no CUDA device", "cudaGetDeviceCount", "no CUDA-capable device is detected", "nvidia.com/gpu"}},
		{name: "old driver", devices: 1, fn: "cudaGetDeviceCount", code: 35, unavailable: true,
			want: []string{"CUDA driver", "CUDA driver version is insufficient", "update the NVIDIA driver"}},
		{name: "device out of range", devices: 2, opts: []Option{WithDevice(2)},
			want: []string{"CUDA device 2 does not exist", "2 device(s)"}},
		{name: "cuBLAS handle", devices: 1, fn: "cublasCreate_v2", code: 3,
			want: []string{"cublasCreate_v2", "CUBLAS_STATUS_ALLOC_FAILED (3)"}},
		{name: "cudaSetDevice", devices: 1, fn: "cudaSetDevice", code: 101,
			want: []string{"cudaSetDevice", "invalid device ordinal (cudaError_t 101)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setDeviceCount(tc.devices)
			if tc.fn != "" {
				f.failNext(tc.fn, tc.code)
			}
			b, err := Open(append([]Option{WithLibraries(f.cudart, f.cublas)}, tc.opts...)...)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(%q, ErrUnavailable) = %v, want %v", err, got, tc.unavailable)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOpenSecondDevice(t *testing.T) {
	f := newFake(t)
	f.setDeviceCount(2)
	b := f.open(t, WithDevice(1))
	layers := backendtest.RandomStack(10, []int{2, 3}, []backend.Activation{backend.Identity})
	m, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rows := backendtest.RandomRows(11, 2)
	got, err := m.Forward(rows, 1)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.CheckClose(t, got, backendtest.Reference(layers, rows, 1), fakeTolerance)
}

func TestOpenMissingLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	t.Run("runtime", func(t *testing.T) {
		path := filepath.Join(missing, "libcudart.so.12")
		_, err := Open(WithLibraries(path, ""))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Open = %v, want ErrUnavailable", err)
		}
		for _, w := range []string{"tried " + path, "install the CUDA runtime"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})
	t.Run("cuBLAS", func(t *testing.T) {
		f := newFake(t)
		path := filepath.Join(missing, "libcublas.so.12")
		_, err := Open(WithLibraries(f.cudart, path))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Open = %v, want ErrUnavailable", err)
		}
		for _, w := range []string{"tried " + path, "install cuBLAS"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})
	t.Run("not the CUDA runtime", func(t *testing.T) {
		f := newFake(t)
		_, err := Open(WithLibraries("libc.so.6", f.cublas))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cudaGetDeviceCount") {
			t.Fatalf("Open with libc as the runtime = %v, want ErrUnavailable naming the missing symbol", err)
		}
	})
}

func TestInfo(t *testing.T) {
	f := newFake(t)
	f.setDeviceCount(3)
	b := f.open(t)
	if b.Name() != "cuda" {
		t.Errorf("Name() = %q", b.Name())
	}
	m, err := b.Load(backendtest.RandomStack(12, []int{64, 64}, []backend.Activation{backend.ReLU}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	devices, version, free, total, err := b.Info()
	if err != nil {
		t.Fatal(err)
	}
	if devices != 3 || version != 12040 || total != 16<<30 || free != total-65*64*4 {
		t.Errorf("Info() = %d devices, version %d, %d of %d bytes free; want 3, 12040, %d of %d", devices, version, free, total, total-65*64*4, uint64(16<<30))
	}
	f.failNext("cudaMemGetInfo", 1)
	if _, _, _, _, err := b.Info(); err == nil || !strings.Contains(err.Error(), "cudaMemGetInfo") {
		t.Errorf("Info with a failing cudaMemGetInfo = %v, want an error naming it", err)
	}
}

func TestInvalidInput(t *testing.T) {
	f := newFake(t)
	b := f.open(t)
	bad := backendtest.RandomStack(13, []int{3, 4, 2}, []backend.Activation{backend.ReLU, backend.Identity})
	bad[1].In = 5
	if _, err := b.Load(bad); err == nil || !strings.Contains(err.Error(), "layer 1 takes 5 inputs but layer 0 gives 4") {
		t.Errorf("Load of a mismatched stack = %v", err)
	}
	if n := f.liveAllocations(); n != 0 {
		t.Errorf("rejected Load allocated %d buffers", n)
	}
	m, err := b.Load(backendtest.RandomStack(13, []int{3, 4, 2}, []backend.Activation{backend.ReLU, backend.Identity}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Forward(make([]float32, 5), 2); err == nil {
		t.Error("Forward of 5 values as 2 rows of 3 succeeded")
	}
	if _, err := m.Forward(nil, 0); err == nil {
		t.Error("Forward of batch 0 succeeded")
	}
}

// Concurrent Forward calls of several batch sizes, which regrow the shared
// buffers, each get their own correct result. Run with -race.
func TestConcurrentForward(t *testing.T) {
	f := newFake(t)
	b := f.open(t)
	layers := backendtest.RandomStack(14, []int{12, 20, 8}, []backend.Activation{backend.Tanh, backend.Sigmoid})
	m, err := b.Load(layers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	backendtest.CheckConcurrentForward(t, m, layers, 100, 20, fakeTolerance)
}

// The fake sgemm is the oracle of every test above; check it on transposed
// operands and a non-zero beta, which the backend itself never uses.
func TestFakeSgemm(t *testing.T) {
	f := newFake(t)
	b := f.open(t)
	// Column-major A^T stored as 3x2 (lda 4), B^T as 2x3 (ldb 2), C 2x2 (ldc 3).
	// op(A) = A is 2x3: [1 2 3; 4 5 6]; op(B) = B is 3x2: [7 8; 9 10; 11 12].
	a := []float32{1, 2, 3, -1, 4, 5, 6, -1}
	bm := []float32{7, 8, 9, 10, 11, 12}
	c := []float32{1, 1, -1, 1, 1, -1}
	// C = 2·A·B + 3·C = 2·[58 64; 139 154] + 3.
	want := []float32{119, 281, -1, 131, 311, -1}
	dev := make([]uintptr, 3)
	for i, host := range [][]float32{a, bm, c} {
		p, err := b.alloc(len(host))
		if err != nil {
			t.Fatal(err)
		}
		defer b.lib.free(p)
		if err := b.upload(p, host); err != nil {
			t.Fatal(err)
		}
		dev[i] = p
	}
	alpha, beta := float32(2), float32(3)
	const opT = 1
	if err := checkBLAS("cublasSgemm_v2", b.lib.cublasSgemm(b.handle, opT, opT, 2, 2, 3, &alpha, dev[0], 4, dev[1], 2, &beta, dev[2], 3)); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(c))
	if err := b.download(got, dev[2]); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("C = %v, want %v", got, want)
		}
	}
	// cuBLAS rejects a leading dimension smaller than the rows.
	if status := b.lib.cublasSgemm(b.handle, cublasOpN, cublasOpN, 2, 2, 3, &alpha, dev[0], 1, dev[1], 3, &beta, dev[2], 2); status != 7 {
		t.Errorf("sgemm with lda 1 < m 2 returned status %d, want CUBLAS_STATUS_INVALID_VALUE (7)", status)
	}
}

func TestCublasErrorNames(t *testing.T) {
	for status, want := range map[int32]string{
		1:  "cublasSgemm_v2: CUBLAS_STATUS_NOT_INITIALIZED (1)",
		3:  "cublasSgemm_v2: CUBLAS_STATUS_ALLOC_FAILED (3)",
		7:  "cublasSgemm_v2: CUBLAS_STATUS_INVALID_VALUE (7)",
		8:  "cublasSgemm_v2: CUBLAS_STATUS_ARCH_MISMATCH (8)",
		11: "cublasSgemm_v2: CUBLAS_STATUS_MAPPING_ERROR (11)",
		13: "cublasSgemm_v2: CUBLAS_STATUS_EXECUTION_FAILED (13)",
		14: "cublasSgemm_v2: CUBLAS_STATUS_INTERNAL_ERROR (14)",
		15: "cublasSgemm_v2: CUBLAS_STATUS_NOT_SUPPORTED (15)",
		99: "cublasSgemm_v2: unknown cublasStatus_t (99)",
	} {
		if got := checkBLAS("cublasSgemm_v2", status).Error(); got != want {
			t.Errorf("status %d: %q, want %q", status, got, want)
		}
	}
	if err := checkBLAS("cublasSgemm_v2", 0); err != nil {
		t.Errorf("status 0: %v, want nil", err)
	}
}
