// fakecudart is a CPU stand-in for libcudart with the same ABI as the CUDA
// runtime functions the cuda package binds. "Device memory" is malloc'd host
// memory kept in a table, so the fake can report leaks, double frees, frees
// of unknown pointers and copies that run past an allocation.
//
// The fake_* functions exist only for tests. fakecublas links against this
// library and uses fake_check_range, fake_note_bad_access and
// fake_take_failure, so both fakes share one allocation table and one set of
// injected failures.
//
// Build: gcc -shared -fPIC -O2 -Wl,-soname,libfakecudart.so -o libfakecudart.so fakecudart.c -lpthread
// (the soname differs from libcudart's so a real runtime is never mistaken
// for the fake in one process, and the other way round).

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int cudaError_t;

enum {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInvalidMemcpyDirection = 21,
	cudaErrorInsufficientDriver = 35,
	cudaErrorNoDevice = 100,
	cudaErrorInvalidDevice = 101,
};

enum { kindHostToHost, kindHostToDevice, kindDeviceToHost, kindDeviceToDevice, numKinds };

#define FAKE_TOTAL_BYTES ((size_t)16 << 30)
#define FAKE_RUNTIME_VERSION 12040
#define MAX_FAILURES 16

struct allocation {
	char *p;
	size_t n;
};

struct failure {
	char fn[64];
	int skip;
	int code;
	int armed;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static struct allocation *allocs;
static size_t nallocs, capallocs;
static size_t live_bytes;
static int bad_frees, bad_accesses;

static int device_count = 1;

static struct failure failures[MAX_FAILURES];

static int memcpy_calls[numKinds];
static unsigned long long memcpy_bytes[numKinds];
static size_t *h2d_sizes;
static size_t nh2d, caph2d;

// find returns the index of the allocation holding [p, p+n), or -1.
// The caller holds mu.
static long find(const void *p, size_t n) {
	const char *c = p;
	for (size_t i = 0; i < nallocs; i++) {
		if (c >= allocs[i].p && c <= allocs[i].p + allocs[i].n && n <= (size_t)(allocs[i].p + allocs[i].n - c)) {
			return (long)i;
		}
	}
	return -1;
}

// fake_check_range reports whether [p, p+n) lies inside one live allocation.
int fake_check_range(const void *p, size_t n) {
	pthread_mutex_lock(&mu);
	int ok = p != NULL && find(p, n) >= 0;
	pthread_mutex_unlock(&mu);
	return ok;
}

void fake_note_bad_access(void) {
	pthread_mutex_lock(&mu);
	bad_accesses++;
	pthread_mutex_unlock(&mu);
}

// fake_take_failure returns the error code injected for the current call of
// fn, or 0 when the call should succeed.
int fake_take_failure(const char *fn) {
	int code = 0;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_FAILURES; i++) {
		struct failure *f = &failures[i];
		if (!f->armed || strcmp(f->fn, fn) != 0) {
			continue;
		}
		if (f->skip > 0) {
			f->skip--;
			break;
		}
		f->armed = 0;
		code = f->code;
		break;
	}
	pthread_mutex_unlock(&mu);
	return code;
}

// fake_fail_after makes the call of fn after skip successful ones return code.
void fake_fail_after(const char *fn, int skip, int code) {
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_FAILURES; i++) {
		struct failure *f = &failures[i];
		if (f->armed) {
			continue;
		}
		strncpy(f->fn, fn, sizeof f->fn - 1);
		f->fn[sizeof f->fn - 1] = 0;
		f->skip = skip;
		f->code = code;
		f->armed = 1;
		break;
	}
	pthread_mutex_unlock(&mu);
}

// fake_fail_next makes the next call of fn return code.
void fake_fail_next(const char *fn, int code) { fake_fail_after(fn, 0, code); }

void fake_set_device_count(int n) {
	pthread_mutex_lock(&mu);
	device_count = n;
	pthread_mutex_unlock(&mu);
}

int fake_live_allocations(void) {
	pthread_mutex_lock(&mu);
	int n = (int)nallocs;
	pthread_mutex_unlock(&mu);
	return n;
}

size_t fake_live_bytes(void) {
	pthread_mutex_lock(&mu);
	size_t n = live_bytes;
	pthread_mutex_unlock(&mu);
	return n;
}

int fake_bad_frees(void) {
	pthread_mutex_lock(&mu);
	int n = bad_frees;
	pthread_mutex_unlock(&mu);
	return n;
}

int fake_bad_accesses(void) {
	pthread_mutex_lock(&mu);
	int n = bad_accesses;
	pthread_mutex_unlock(&mu);
	return n;
}

int fake_memcpy_calls(int kind) {
	if (kind < 0 || kind >= numKinds) {
		return -1;
	}
	pthread_mutex_lock(&mu);
	int n = memcpy_calls[kind];
	pthread_mutex_unlock(&mu);
	return n;
}

unsigned long long fake_memcpy_bytes(int kind) {
	if (kind < 0 || kind >= numKinds) {
		return 0;
	}
	pthread_mutex_lock(&mu);
	unsigned long long n = memcpy_bytes[kind];
	pthread_mutex_unlock(&mu);
	return n;
}

// fake_h2d_copies_of counts host-to-device copies of exactly bytes bytes.
int fake_h2d_copies_of(size_t bytes) {
	int n = 0;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nh2d; i++) {
		if (h2d_sizes[i] == bytes) {
			n++;
		}
	}
	pthread_mutex_unlock(&mu);
	return n;
}

// fake_reset forgets injected failures and counters, restores one device,
// and frees what a previous test leaked so one failure does not cascade.
void fake_reset(void) {
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nallocs; i++) {
		free(allocs[i].p);
	}
	nallocs = 0;
	live_bytes = 0;
	bad_frees = 0;
	bad_accesses = 0;
	device_count = 1;
	memset(failures, 0, sizeof failures);
	memset(memcpy_calls, 0, sizeof memcpy_calls);
	memset(memcpy_bytes, 0, sizeof memcpy_bytes);
	nh2d = 0;
	pthread_mutex_unlock(&mu);
}

const char *cudaGetErrorString(cudaError_t err) {
	switch (err) {
	case cudaSuccess:
		return "no error";
	case cudaErrorInvalidValue:
		return "invalid argument";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorInvalidMemcpyDirection:
		return "invalid copy direction for memcpy";
	case cudaErrorInsufficientDriver:
		return "CUDA driver version is insufficient for CUDA runtime version";
	case cudaErrorNoDevice:
		return "no CUDA-capable device is detected";
	case cudaErrorInvalidDevice:
		return "invalid device ordinal";
	default:
		return "unrecognized error code";
	}
}

cudaError_t cudaGetDeviceCount(int *count) {
	int code = fake_take_failure("cudaGetDeviceCount");
	if (code) {
		*count = 0;
		return code;
	}
	pthread_mutex_lock(&mu);
	int n = device_count;
	pthread_mutex_unlock(&mu);
	*count = n;
	return n == 0 ? cudaErrorNoDevice : cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
	int code = fake_take_failure("cudaSetDevice");
	if (code) {
		return code;
	}
	pthread_mutex_lock(&mu);
	int n = device_count;
	pthread_mutex_unlock(&mu);
	return device < 0 || device >= n ? cudaErrorInvalidDevice : cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
	int code = fake_take_failure("cudaRuntimeGetVersion");
	if (code) {
		return code;
	}
	*version = FAKE_RUNTIME_VERSION;
	return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *freeBytes, size_t *totalBytes) {
	int code = fake_take_failure("cudaMemGetInfo");
	if (code) {
		return code;
	}
	pthread_mutex_lock(&mu);
	*freeBytes = FAKE_TOTAL_BYTES - live_bytes;
	*totalBytes = FAKE_TOTAL_BYTES;
	pthread_mutex_unlock(&mu);
	return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return fake_take_failure("cudaDeviceSynchronize"); }

cudaError_t cudaMalloc(void **devPtr, size_t size) {
	if (devPtr == NULL) {
		return cudaErrorInvalidValue;
	}
	int code = fake_take_failure("cudaMalloc");
	if (code) {
		return code;
	}
	char *p = malloc(size ? size : 1);
	if (p == NULL) {
		return cudaErrorMemoryAllocation;
	}
	// Poison fresh memory: a reader of uninitialized device memory sees NaN.
	memset(p, 0xff, size);
	pthread_mutex_lock(&mu);
	if (nallocs == capallocs) {
		capallocs = capallocs ? 2 * capallocs : 64;
		allocs = realloc(allocs, capallocs * sizeof *allocs);
	}
	allocs[nallocs++] = (struct allocation){p, size};
	live_bytes += size;
	pthread_mutex_unlock(&mu);
	*devPtr = p;
	return cudaSuccess;
}

cudaError_t cudaFree(void *devPtr) {
	if (devPtr == NULL) {
		return cudaSuccess;
	}
	int code = fake_take_failure("cudaFree");
	if (code) {
		return code;
	}
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nallocs; i++) {
		if (allocs[i].p == devPtr) {
			free(allocs[i].p);
			live_bytes -= allocs[i].n;
			allocs[i] = allocs[--nallocs];
			pthread_mutex_unlock(&mu);
			return cudaSuccess;
		}
	}
	bad_frees++;
	pthread_mutex_unlock(&mu);
	return cudaErrorInvalidValue;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, int kind) {
	int code = fake_take_failure("cudaMemcpy");
	if (code) {
		return code;
	}
	if (kind < 0 || kind >= numKinds) {
		return cudaErrorInvalidMemcpyDirection;
	}
	int dstDevice = kind == kindHostToDevice || kind == kindDeviceToDevice;
	int srcDevice = kind == kindDeviceToHost || kind == kindDeviceToDevice;
	if ((dstDevice && !fake_check_range(dst, count)) || (srcDevice && !fake_check_range(src, count))) {
		fake_note_bad_access();
		return cudaErrorInvalidValue;
	}
	memmove(dst, src, count);
	pthread_mutex_lock(&mu);
	memcpy_calls[kind]++;
	memcpy_bytes[kind] += count;
	if (kind == kindHostToDevice) {
		if (nh2d == caph2d) {
			caph2d = caph2d ? 2 * caph2d : 256;
			h2d_sizes = realloc(h2d_sizes, caph2d * sizeof *h2d_sizes);
		}
		h2d_sizes[nh2d++] = count;
	}
	pthread_mutex_unlock(&mu);
	return cudaSuccess;
}
