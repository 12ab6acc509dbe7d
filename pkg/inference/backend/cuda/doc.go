// Package cuda is a backend.Backend that runs dense layers on an NVIDIA GPU
// through cuBLAS.
//
// # Loaded at run time
//
// The package needs neither cgo nor CUDA to build: Open loads the CUDA
// runtime (libcudart of CUDA 11, 12 or 13) and cuBLAS (libcublas, preferably
// of the same release), searched as search.go describes (given directories,
// the dynamic loader, the CUDA toolkit, NVIDIA's Python wheels), with
// dlopen through github.com/ebitengine/purego and binds the
// few functions it calls: cudaGetDeviceCount, cudaSetDevice, cudaMalloc,
// cudaFree, cudaMemcpy, cudaDeviceSynchronize, cudaGetErrorString,
// cudaRuntimeGetVersion, cudaMemGetInfo, cublasCreate_v2, cublasDestroy_v2 and
// cublasSgemm_v2. One binary therefore serves nodes with and without GPUs:
// where a library, the driver or a device is missing, Open returns an error
// wrapping ErrUnavailable that names what it tried and what to install, and
// the caller can fall back to the CPU backend. The libraries stay loaded for
// the life of the process.
//
// # Bias fold-in
//
// Load copies each layer's weights to the device once, with the bias as an
// extra last row: W' = [W; B] of shape [In+1, Out]. Forward appends a column
// of ones to the layer's input, so in' · W' = in · W + B and the bias costs
// no separate device operation. cuBLAS is column-major; the row-major
// product is computed as its column-major transpose (see gemm in cuda.go).
//
// # Activations on the host
//
// Without cgo there is no nvcc and no kernel to launch, and cuBLAS has no
// element-wise activations, so each layer's product is copied back and the
// activation (identity, relu, sigmoid, tanh) is applied in Go before the
// next layer's input is copied up. That is a round trip per layer; the
// product, which dominates for wide layers, stays on the GPU. Fusing the
// activation on the device would need a kernel (nvrtc or a prebuilt PTX
// loaded through the driver API) and is left for when profiles ask for it.
//
// # Concurrency and memory
//
// Forward is safe for concurrent use; device work is serialized by a mutex
// per Backend, on a locked OS thread whose current device is the backend's.
// A model owns its weights and two activation buffers that grow to the
// largest batch seen. Model.Close frees them exactly once; Backend.Close
// frees the models still open and destroys the cuBLAS handle. Closing twice
// is a no-op, and Forward or Load after Close is an error.
//
// # Tests
//
// testdata/fakecuda holds a fake libcudart and libcublas written in C with
// the same ABI as the functions above, implemented on the CPU: device memory
// is malloc'd memory in a table, cudaMemcpy a memcpy, cublasSgemm_v2 a plain
// column-major sgemm. The tests compile them with gcc, load them with
// WithLibraries, and use extra fake_* functions to count allocations and
// copies and to make a chosen call fail. They prove the binding: the symbol
// names, the argument passing (including sgemm's 14 arguments and the
// row-major to column-major mapping), the handling of error codes, and
// memory lifetimes (no leak, no double free, no access outside an
// allocation, weights uploaded once). They prove nothing about a real GPU's
// numbers, speed or driver behaviour, and the fake encodes this package's
// reading of the cuBLAS contract, so a shared misreading passes: those wait
// for gpu_test.go, built with the gpu tag and run by make test-gpu on a
// machine with CUDA.
package cuda
