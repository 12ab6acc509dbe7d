package cuda

import (
	"fmt"
	"os"
	"strings"

	"github.com/ebitengine/purego"
)

const (
	cudartHint = "install the CUDA runtime (libcudart from CUDA 11, 12 or 13: an nvidia/cuda runtime image, the CUDA packages, or the nvidia-cuda-runtime wheel) where the search finds it, or name its directory with --cuda-lib-dir"
	cublasHint = "install cuBLAS (libcublas from CUDA 11, 12 or 13: an nvidia/cuda runtime image, the CUDA packages, or the nvidia-cublas wheel) where the search finds it, or name its directory with --cuda-lib-dir"
)

// cudaMemcpyKind values.
const (
	memcpyHostToDevice int32 = 1
	memcpyDeviceToHost int32 = 2
)

// cublasOperation_t values.
const cublasOpN int32 = 0

// api holds the C functions of the CUDA runtime and cuBLAS. Device pointers
// are uintptr: they are addresses in the device's space that Go never
// dereferences. Host buffers are passed as slices, which purego hands to C as
// a pointer to the first element and keeps alive for the call.
type api struct {
	getDeviceCount    func(count *int32) int32
	setDevice         func(device int32) int32
	malloc            func(devPtr *uintptr, size uintptr) int32
	free              func(devPtr uintptr) int32
	memcpyToDevice    func(dst uintptr, src []float32, count uintptr, kind int32) int32
	memcpyToHost      func(dst []float32, src uintptr, count uintptr, kind int32) int32
	deviceSynchronize func() int32
	getErrorString    func(err int32) string
	runtimeGetVersion func(version *int32) int32
	memGetInfo        func(free, total *uintptr) int32

	cublasCreate  func(handle *uintptr) int32
	cublasDestroy func(handle uintptr) int32
	cublasSgemm   func(handle uintptr, transa, transb, m, n, k int32, alpha *float32, a uintptr, lda int32,
		b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32
}

// loadAPI opens the two libraries, each the first of its candidates that
// loads, and binds every function. Unless pinned, cuBLAS candidates of the
// runtime's major version go first. It returns the files it loaded. The
// libraries stay loaded for the life of the process, as if linked:
// unloading the CUDA runtime after it has initialized is not safe.
func loadAPI(cudartCands, cublasCands []string, pinnedBLAS bool) (*api, [2]string, error) {
	var paths [2]string
	cudart, name, err := openFirst("the CUDA runtime", cudartCands, cudartHint)
	if err != nil {
		return nil, paths, err
	}
	paths[0] = loadedPath(name)
	var a api
	if err := bind(cudart, []symbol{
		{&a.getDeviceCount, "cudaGetDeviceCount"},
		{&a.setDevice, "cudaSetDevice"},
		{&a.malloc, "cudaMalloc"},
		{&a.free, "cudaFree"},
		{&a.memcpyToDevice, "cudaMemcpy"},
		{&a.memcpyToHost, "cudaMemcpy"},
		{&a.deviceSynchronize, "cudaDeviceSynchronize"},
		{&a.getErrorString, "cudaGetErrorString"},
		{&a.runtimeGetVersion, "cudaRuntimeGetVersion"},
		{&a.memGetInfo, "cudaMemGetInfo"},
	}); err != nil {
		_ = purego.Dlclose(cudart) // Nothing was called yet, so unloading is safe.
		return nil, paths, err
	}
	var version int32
	if !pinnedBLAS && a.runtimeGetVersion(&version) == 0 && version >= 1000 {
		cublasCands = preferMajor(cublasCands, int(version/1000))
	}
	cublas, name, err := openFirst("cuBLAS", cublasCands, cublasHint)
	if err != nil {
		return nil, paths, err // the runtime stays: its version was asked
	}
	paths[1] = loadedPath(name)
	if err := bind(cublas, []symbol{
		{&a.cublasCreate, "cublasCreate_v2"},
		{&a.cublasDestroy, "cublasDestroy_v2"},
		{&a.cublasSgemm, "cublasSgemm_v2"},
	}); err != nil {
		return nil, paths, err
	}
	return &a, paths, nil
}

// openFirst opens the first of names that loads, and says which. A cuBLAS
// file in a directory gets its libcublasLt from beside it first.
func openFirst(what string, names []string, hint string) (uintptr, string, error) {
	reasons := make([]string, 0, len(names))
	for _, name := range names {
		if dep := dependencyOf(name); dep != "" {
			if _, err := os.Stat(dep); err == nil {
				_, _ = purego.Dlopen(dep, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			}
		}
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			return h, name, nil
		}
		// A missing file is the usual case; only other failures (a wrong
		// architecture, a missing dependency) are worth their text.
		if !strings.Contains(err.Error(), "No such file or directory") {
			reasons = append(reasons, err.Error())
		}
	}
	why := "none found"
	if len(reasons) > 0 {
		why = strings.Join(reasons, "; ")
	}
	return 0, "", fmt.Errorf("%w: cannot load %s: tried %s: %s; %s",
		ErrUnavailable, what, strings.Join(names, ", "), why, hint)
}

type symbol struct {
	fptr any
	name string
}

// bind points each fptr at its C function, failing on the first missing one
// instead of panicking as purego.RegisterLibFunc would.
func bind(lib uintptr, syms []symbol) error {
	for _, s := range syms {
		addr, err := purego.Dlsym(lib, s.name)
		if err != nil {
			return fmt.Errorf("%w: the loaded library has no %s (%v); install CUDA 11, 12 or 13", ErrUnavailable, s.name, err)
		}
		purego.RegisterFunc(s.fptr, addr)
	}
	return nil
}
