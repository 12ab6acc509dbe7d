package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// Name is the backend's name.
const Name = "cuda"

const noDeviceHint = "check that the NVIDIA driver is installed and the pod requests nvidia.com/gpu"

var _ backend.Backend = (*Backend)(nil)

// Backend runs models on one CUDA device through cuBLAS.
type Backend struct {
	lib    *api
	paths  [2]string // the CUDA runtime's and cuBLAS's files
	device int32

	// mu serializes all device work and guards the cuBLAS handle, every
	// model's device buffers and the models set. All work goes to the
	// default stream, which runs it in order anyway.
	mu     sync.Mutex
	handle uintptr // cublasHandle_t
	models map[*model]struct{}
	closed bool
}

// Open loads the CUDA runtime and cuBLAS, selects the device and creates a
// cuBLAS handle. The error wraps ErrUnavailable when the libraries, the
// driver or a device are missing.
func Open(opts ...Option) (*Backend, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	cudart, cublas := cfg.cudart, cfg.cublas
	if cudart == nil {
		cudart = hostEnvironment.candidates(cudartNames, cfg.dirs)
	}
	if cublas == nil {
		cublas = hostEnvironment.candidates(cublasNames, cfg.dirs)
	}
	lib, paths, err := loadAPI(cudart, cublas, cfg.cublas != nil)
	if err != nil {
		return nil, err
	}
	var count int32
	err = lib.check("cudaGetDeviceCount", lib.getDeviceCount(&count))
	var cerr *cudaError
	switch {
	case errors.As(err, &cerr) && cerr.code == cudaErrorInsufficientDriver:
		return nil, fmt.Errorf("CUDA driver too old for this runtime: %w; update the NVIDIA driver or use an older CUDA runtime", err)
	case errors.As(err, &cerr) && cerr.code == cudaErrorNoDevice:
		return nil, fmt.Errorf("no CUDA device: %w; %s", err, noDeviceHint)
	case err != nil:
		return nil, err
	case count == 0:
		return nil, fmt.Errorf("%w: no CUDA device; %s", ErrUnavailable, noDeviceHint)
	}
	if cfg.device < 0 || cfg.device >= int(count) {
		return nil, fmt.Errorf("CUDA device %d does not exist: %d device(s) visible", cfg.device, count)
	}
	b := &Backend{lib: lib, paths: paths, device: int32(cfg.device), models: map[*model]struct{}{}}
	err = b.onDevice(func() error {
		return checkBLAS("cublasCreate_v2", lib.cublasCreate(&b.handle))
	})
	if err != nil {
		return nil, fmt.Errorf("creating the cuBLAS handle on device %d: %w", cfg.device, err)
	}
	return b, nil
}

// Name returns "cuda".
func (b *Backend) Name() string { return Name }

// Libraries returns the files of the CUDA runtime and cuBLAS that Open
// loaded (a bare library name where the process's mappings do not say).
func (b *Backend) Libraries() (cudart, cublas string) { return b.paths[0], b.paths[1] }

// Info reports the visible devices, the CUDA runtime version (1000*major +
// 10*minor) and the selected device's free and total memory, for logging.
func (b *Backend) Info() (devices, runtimeVersion int, freeBytes, totalBytes uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, 0, 0, 0, errClosed
	}
	var count, version int32
	var free, total uintptr
	err = b.onDevice(func() error {
		return errors.Join(
			b.lib.check("cudaGetDeviceCount", b.lib.getDeviceCount(&count)),
			b.lib.check("cudaRuntimeGetVersion", b.lib.runtimeGetVersion(&version)),
			b.lib.check("cudaMemGetInfo", b.lib.memGetInfo(&free, &total)),
		)
	})
	return int(count), int(version), uint64(free), uint64(total), err
}

// Close frees the memory of every model still loaded and destroys the
// cuBLAS handle. Closing twice is a no-op.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.onDevice(func() error {
		errs := []error{b.lib.check("cudaDeviceSynchronize", b.lib.deviceSynchronize())}
		for m := range b.models {
			m.closed = true
			errs = append(errs, m.freeDevice())
		}
		errs = append(errs, checkBLAS("cublasDestroy_v2", b.lib.cublasDestroy(b.handle)))
		return errors.Join(errs...)
	})
	b.models = nil
	b.handle = 0
	if err != nil {
		return fmt.Errorf("closing the CUDA backend: %w", err)
	}
	return nil
}

// onDevice runs f on a locked OS thread whose current device is b's: the
// CUDA runtime keeps the current device per host thread, and goroutines move
// between threads. The caller holds b.mu (or owns b, in Open). When
// cudaSetDevice fails the device is unusable and f is not run.
func (b *Backend) onDevice(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.lib.check("cudaSetDevice", b.lib.setDevice(b.device)); err != nil {
		return err
	}
	return f()
}

// alloc allocates n float32 values of device memory.
func (b *Backend) alloc(n int) (uintptr, error) {
	var p uintptr
	if err := b.lib.check("cudaMalloc", b.lib.malloc(&p, uintptr(n)*4)); err != nil {
		return 0, fmt.Errorf("allocating %d bytes: %w", n*4, err)
	}
	return p, nil
}

// upload copies src to the device memory at dst.
func (b *Backend) upload(dst uintptr, src []float32) error {
	return b.lib.check("cudaMemcpy", b.lib.memcpyToDevice(dst, src, uintptr(len(src))*4, memcpyHostToDevice))
}

// download copies len(dst) values from the device memory at src.
func (b *Backend) download(dst []float32, src uintptr) error {
	return b.lib.check("cudaMemcpy", b.lib.memcpyToHost(dst, src, uintptr(len(dst))*4, memcpyDeviceToHost))
}

// gemm computes the row-major product c[m,n] = a[m,k] · w[k,n] of device
// matrices. cuBLAS is column-major, and a row-major matrix read as
// column-major is its transpose, so this is the column-major
// c^T[n,m] = w^T[n,k] · a^T[k,m]: w comes first and no operand is transposed.
func (b *Backend) gemm(m, n, k int, a, w, c uintptr) error {
	alpha, beta := float32(1), float32(0)
	return checkBLAS("cublasSgemm_v2", b.lib.cublasSgemm(b.handle, cublasOpN, cublasOpN,
		int32(n), int32(m), int32(k), &alpha, w, int32(n), a, int32(k), &beta, c, int32(n)))
}
