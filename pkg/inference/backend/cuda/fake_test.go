package cuda

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ebitengine/purego"
)

// fakeCUDA is the fake libcudart and libcublas of testdata/fakecuda, built
// once per test binary, with their test-only functions.
type fakeCUDA struct {
	cudart, cublas string // paths for WithLibraries

	liveAllocations func() int32
	liveBytes       func() uintptr
	badFrees        func() int32
	badAccesses     func() int32
	failAfter       func(fn string, skip, code int32)
	setDeviceCount  func(n int32)
	memcpyCalls     func(kind int32) int32
	memcpyBytes     func(kind int32) uint64
	h2dCopiesOf     func(bytes uintptr) int32
	reset           func()

	liveHandles  func() int32
	sgemmCalls   func() int32
	resetHandles func()
}

var (
	fakeOnce sync.Once
	fakeLib  *fakeCUDA
	fakeErr  error
	fakeDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

// newFake returns the fake libraries with counters and injected failures
// reset, and checks when t ends that nothing leaked: no device allocation,
// no cuBLAS handle, no bad free, no access outside an allocation. It skips
// t when gcc is missing.
func newFake(t *testing.T) *fakeCUDA {
	t.Helper()
	fakeOnce.Do(func() { fakeLib, fakeErr = buildFake() })
	if errors.Is(fakeErr, exec.ErrNotFound) {
		t.Skip("gcc not found: cannot build the fake CUDA libraries in testdata/fakecuda; install gcc to run this test")
	}
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	f := fakeLib
	f.reset()
	f.resetHandles()
	t.Cleanup(func() {
		if n := f.liveAllocations(); n != 0 {
			t.Errorf("%d device allocations leaked (%d bytes)", n, f.liveBytes())
		}
		if n := f.liveHandles(); n != 0 {
			t.Errorf("%d cuBLAS handles leaked", n)
		}
		if n := f.badFrees(); n != 0 {
			t.Errorf("%d cudaFree calls on pointers that were not allocated or already freed", n)
		}
		if n := f.badAccesses(); n != 0 {
			t.Errorf("%d calls touched memory outside a live allocation or used a dead handle", n)
		}
	})
	return f
}

// open opens a Backend on the fake and closes it when t ends.
func (f *fakeCUDA) open(t *testing.T, opts ...Option) *Backend {
	t.Helper()
	b, err := Open(append([]Option{WithLibraries(f.cudart, f.cublas)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func buildFake() (*fakeCUDA, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, err
	}
	fakeDir, err = os.MkdirTemp("", "fakecuda")
	if err != nil {
		return nil, err
	}
	f := &fakeCUDA{
		cudart: filepath.Join(fakeDir, "libfakecudart.so"),
		cublas: filepath.Join(fakeDir, "libfakecublas.so"),
	}
	src, err := filepath.Abs(filepath.Join("testdata", "fakecuda"))
	if err != nil {
		return nil, err
	}
	builds := [][]string{
		{"-shared", "-fPIC", "-O2", "-Wall", "-Wl,-soname,libfakecudart.so", "-Wl,-Bsymbolic",
			"-o", f.cudart, filepath.Join(src, "fakecudart.c"), "-lpthread"},
		{"-shared", "-fPIC", "-O2", "-Wall", "-Wl,-soname,libfakecublas.so", "-Wl,-Bsymbolic",
			"-o", f.cublas, filepath.Join(src, "fakecublas.c"), "-L" + fakeDir, "-lfakecudart", "-Wl,-rpath,$ORIGIN", "-lpthread"},
	}
	for _, args := range builds {
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the fake CUDA libraries: gcc %v: %w\n%s", args, err, out)
		}
	}
	cudart, err := purego.Dlopen(f.cudart, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	cublas, err := purego.Dlopen(f.cublas, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	purego.RegisterLibFunc(&f.liveAllocations, cudart, "fake_live_allocations")
	purego.RegisterLibFunc(&f.liveBytes, cudart, "fake_live_bytes")
	purego.RegisterLibFunc(&f.badFrees, cudart, "fake_bad_frees")
	purego.RegisterLibFunc(&f.badAccesses, cudart, "fake_bad_accesses")
	purego.RegisterLibFunc(&f.failAfter, cudart, "fake_fail_after")
	purego.RegisterLibFunc(&f.setDeviceCount, cudart, "fake_set_device_count")
	purego.RegisterLibFunc(&f.memcpyCalls, cudart, "fake_memcpy_calls")
	purego.RegisterLibFunc(&f.memcpyBytes, cudart, "fake_memcpy_bytes")
	purego.RegisterLibFunc(&f.h2dCopiesOf, cudart, "fake_h2d_copies_of")
	purego.RegisterLibFunc(&f.reset, cudart, "fake_reset")
	purego.RegisterLibFunc(&f.liveHandles, cublas, "fake_live_handles")
	purego.RegisterLibFunc(&f.sgemmCalls, cublas, "fake_sgemm_calls")
	purego.RegisterLibFunc(&f.resetHandles, cublas, "fake_reset_handles")
	return f, nil
}

// failNext makes the next call of fn return code.
func (f *fakeCUDA) failNext(fn string, code int32) { f.failAfter(fn, 0, code) }
