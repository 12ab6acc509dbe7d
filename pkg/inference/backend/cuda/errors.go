package cuda

import (
	"errors"
	"fmt"
)

// ErrUnavailable is wrapped by the errors of Open when this process cannot
// use CUDA at all: a library is missing, the driver is too old, or there is
// no device. A caller may then fall back to the CPU backend.
var ErrUnavailable = errors.New("CUDA is unavailable")

var errClosed = errors.New("cuda: use of a closed model or backend")

// cudaError_t values that mean CUDA cannot be used in this process.
const (
	cudaErrorInsufficientDriver int32 = 35
	cudaErrorNoDevice           int32 = 100
)

// cudaError is a failed CUDA runtime call.
type cudaError struct {
	call string
	code int32
	msg  string // cudaGetErrorString's text
}

func (e *cudaError) Error() string {
	return fmt.Sprintf("%s: %s (cudaError_t %d)", e.call, e.msg, e.code)
}

// Is makes errors.Is(err, ErrUnavailable) true for a missing device or driver.
func (e *cudaError) Is(target error) bool {
	return target == ErrUnavailable && (e.code == cudaErrorNoDevice || e.code == cudaErrorInsufficientDriver)
}

// check turns a cudaError_t returned by call into an error.
func (a *api) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return &cudaError{call: call, code: code, msg: a.getErrorString(code)}
}

// cublasStatusNames names the cublasStatus_t values.
var cublasStatusNames = map[int32]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
}

// cublasError is a failed cuBLAS call.
type cublasError struct {
	call   string
	status int32
}

func (e *cublasError) Error() string {
	name, ok := cublasStatusNames[e.status]
	if !ok {
		name = "unknown cublasStatus_t"
	}
	return fmt.Sprintf("%s: %s (%d)", e.call, name, e.status)
}

// checkBLAS turns a cublasStatus_t returned by call into an error.
func checkBLAS(call string, status int32) error {
	if status == 0 {
		return nil
	}
	return &cublasError{call: call, status: status}
}
