// fakecublas is a CPU stand-in for libcublas with the same ABI as the cuBLAS
// functions the cuda package binds. cublasSgemm_v2 is a plain column-major
// sgemm that checks its arguments the way cuBLAS does and checks that every
// operand lies inside memory allocated by the fake cudaMalloc.
//
// Build: gcc -shared -fPIC -O2 -Wl,-soname,libfakecublas.so -o libfakecublas.so fakecublas.c \
//   -L. -lfakecudart -Wl,-rpath,'$ORIGIN'

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef int cublasStatus_t;
typedef int cublasOperation_t;
typedef struct fake_handle *cublasHandle_t;

enum {
	CUBLAS_STATUS_SUCCESS = 0,
	CUBLAS_STATUS_NOT_INITIALIZED = 1,
	CUBLAS_STATUS_ALLOC_FAILED = 3,
	CUBLAS_STATUS_INVALID_VALUE = 7,
	CUBLAS_STATUS_EXECUTION_FAILED = 13,
};

enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };

// A handle owns nothing: the fake has no streams, workspaces or math modes.
struct fake_handle {
	char unused;
};

// From fakecudart.
int fake_check_range(const void *p, size_t n);
void fake_note_bad_access(void);
int fake_take_failure(const char *fn);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t handles[64];
static int nhandles;
static int sgemm_calls;

// live reports whether h was created and not yet destroyed.
static int live(cublasHandle_t h) {
	pthread_mutex_lock(&mu);
	int ok = 0;
	for (int i = 0; i < nhandles; i++) {
		if (handles[i] == h) {
			ok = 1;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return ok;
}

int fake_live_handles(void) {
	pthread_mutex_lock(&mu);
	int n = nhandles;
	pthread_mutex_unlock(&mu);
	return n;
}

int fake_sgemm_calls(void) {
	pthread_mutex_lock(&mu);
	int n = sgemm_calls;
	pthread_mutex_unlock(&mu);
	return n;
}

// fake_reset_handles forgets leaked handles and counters.
void fake_reset_handles(void) {
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nhandles; i++) {
		free(handles[i]);
	}
	nhandles = 0;
	sgemm_calls = 0;
	pthread_mutex_unlock(&mu);
}

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
	if (handle == NULL) {
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	int code = fake_take_failure("cublasCreate_v2");
	if (code) {
		return code;
	}
	cublasHandle_t h = calloc(1, sizeof *h);
	pthread_mutex_lock(&mu);
	if (h == NULL || nhandles == (int)(sizeof handles / sizeof handles[0])) {
		pthread_mutex_unlock(&mu);
		free(h);
		return CUBLAS_STATUS_ALLOC_FAILED;
	}
	handles[nhandles++] = h;
	pthread_mutex_unlock(&mu);
	*handle = h;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
	int code = fake_take_failure("cublasDestroy_v2");
	if (code) {
		return code;
	}
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nhandles; i++) {
		if (handles[i] == handle) {
			free(handle);
			handles[i] = handles[--nhandles];
			pthread_mutex_unlock(&mu);
			return CUBLAS_STATUS_SUCCESS;
		}
	}
	pthread_mutex_unlock(&mu);
	fake_note_bad_access();
	return CUBLAS_STATUS_NOT_INITIALIZED;
}

static int max1(int a) { return a > 1 ? a : 1; }

// span is the bytes a column-major rows x cols matrix with leading
// dimension ld covers.
static size_t span(int rows, int cols, int ld) {
	return ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * sizeof(float);
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc) {
	if (!live(handle)) {
		fake_note_bad_access();
		return CUBLAS_STATUS_NOT_INITIALIZED;
	}
	int code = fake_take_failure("cublasSgemm_v2");
	if (code) {
		return code;
	}
	int ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
	int rowsA = ta ? k : m, colsA = ta ? m : k;
	int rowsB = tb ? n : k, colsB = tb ? k : n;
	if ((transa < CUBLAS_OP_N || transa > CUBLAS_OP_C) || (transb < CUBLAS_OP_N || transb > CUBLAS_OP_C) || m < 0 ||
	    n < 0 || k < 0 || lda < max1(rowsA) || ldb < max1(rowsB) || ldc < max1(m) || alpha == NULL || beta == NULL) {
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	// The default pointer mode is host: alpha and beta must not be device memory.
	if (fake_check_range(alpha, sizeof *alpha) || fake_check_range(beta, sizeof *beta)) {
		fake_note_bad_access();
		return CUBLAS_STATUS_EXECUTION_FAILED;
	}
	pthread_mutex_lock(&mu);
	sgemm_calls++;
	pthread_mutex_unlock(&mu);
	if (m == 0 || n == 0) {
		return CUBLAS_STATUS_SUCCESS;
	}
	if ((k > 0 && (!fake_check_range(A, span(rowsA, colsA, lda)) || !fake_check_range(B, span(rowsB, colsB, ldb)))) ||
	    !fake_check_range(C, span(m, n, ldc))) {
		fake_note_bad_access();
		return CUBLAS_STATUS_EXECUTION_FAILED;
	}
	float a = *alpha, b = *beta;
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < m; i++) {
			float sum = 0;
			for (int l = 0; l < k; l++) {
				float x = ta ? A[l + (size_t)i * lda] : A[i + (size_t)l * lda];
				float y = tb ? B[j + (size_t)l * ldb] : B[l + (size_t)j * ldb];
				sum += x * y;
			}
			float *c = &C[i + (size_t)j * ldc];
			// With beta == 0, C is output only and need not be initialized.
			*c = b == 0 ? a * sum : a * sum + b * *c;
		}
	}
	return CUBLAS_STATUS_SUCCESS;
}
