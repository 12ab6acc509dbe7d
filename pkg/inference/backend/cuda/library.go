package cuda

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// Library names tried in order when no path is given. The unversioned names
// come with the CUDA development packages, the versioned ones with the
// runtime packages and the nvidia/cuda runtime images.
var (
	defaultCudart = []string{"libcudart.so", "libcudart.so.12", "libcudart.so.11.0"}
	defaultCublas = []string{"libcublas.so", "libcublas.so.12", "libcublas.so.11"}
)

const (
	cudartHint = "install the CUDA runtime (libcudart from CUDA 11 or 12, e.g. an nvidia/cuda runtime image) and make sure the dynamic loader finds it (ldconfig or LD_LIBRARY_PATH)"
	cublasHint = "install cuBLAS (libcublas from CUDA 11 or 12, e.g. an nvidia/cuda runtime image) and make sure the dynamic loader finds it (ldconfig or LD_LIBRARY_PATH)"
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

// loadAPI opens the two libraries and binds every function. The libraries
// stay loaded for the life of the process, as if linked: unloading the CUDA
// runtime after it has initialized is not safe.
func loadAPI(cudartNames, cublasNames []string) (*api, error) {
	cudart, err := openFirst("the CUDA runtime", cudartNames, cudartHint)
	if err != nil {
		return nil, err
	}
	cublas, err := openFirst("cuBLAS", cublasNames, cublasHint)
	if err != nil {
		_ = purego.Dlclose(cudart) // Nothing was called yet, so unloading is safe.
		return nil, err
	}
	var a api
	err = bind(cudart, []symbol{
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
	})
	if err == nil {
		err = bind(cublas, []symbol{
			{&a.cublasCreate, "cublasCreate_v2"},
			{&a.cublasDestroy, "cublasDestroy_v2"},
			{&a.cublasSgemm, "cublasSgemm_v2"},
		})
	}
	if err != nil {
		_ = purego.Dlclose(cublas)
		_ = purego.Dlclose(cudart)
		return nil, err
	}
	return &a, nil
}

// openFirst opens the first of names that the dynamic loader finds.
func openFirst(what string, names []string, hint string) (uintptr, error) {
	reasons := make([]string, 0, len(names))
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			return h, nil
		}
		reasons = append(reasons, err.Error())
	}
	return 0, fmt.Errorf("%w: cannot load %s: tried %s (%s); %s",
		ErrUnavailable, what, strings.Join(names, ", "), strings.Join(reasons, "; "), hint)
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
			return fmt.Errorf("%w: the loaded library has no %s (%v); install CUDA 11 or 12", ErrUnavailable, s.name, err)
		}
		purego.RegisterFunc(s.fptr, addr)
	}
	return nil
}
