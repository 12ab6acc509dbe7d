package cuda

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Where Open looks for the CUDA runtime and cuBLAS when WithLibraries does
// not name them, in this order, taking the first that loads:
//
//  1. each directory given with WithLibraryDirs (inference-server
//     --cuda-lib-dir), in the order given;
//  2. the dynamic loader's own search by name (LD_LIBRARY_PATH, then the
//     ld.so cache: the CUDA packages, the nvidia/cuda images);
//  3. the CUDA toolkit: $CUDA_HOME/lib64, $CUDA_PATH/lib64,
//     /usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib;
//  4. NVIDIA's Python wheels (nvidia-cuda-runtime, nvidia-cublas) in the
//     site-packages of $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local, /usr/local,
//     /usr and /opt/conda: nvidia/cu13/lib for CUDA 13 wheels,
//     nvidia/cuda_runtime/lib and nvidia/cublas/lib for CUDA 11 and 12
//     wheels; and $CONDA_PREFIX/lib (conda's CUDA packages).
//
// In each place the unversioned name (a toolkit's development link) comes
// first, then CUDA 13, 12 and 11. cuBLAS of the runtime's major version is
// preferred wherever it is (see preferMajor).
var (
	cudartNames = []string{"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"}
	cublasNames = []string{"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}
)

// toolkitDirs are the CUDA toolkit's library directories; $VARS expand.
var toolkitDirs = []string{"$CUDA_HOME/lib64", "$CUDA_PATH/lib64", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"}

// sitePackages are glob patterns of Python package directories; $VARS
// expand, and a pattern whose variable is unset is skipped.
var sitePackages = []string{
	"$VIRTUAL_ENV/lib/python3*/site-packages",
	"$CONDA_PREFIX/lib/python3*/site-packages",
	"$HOME/.local/lib/python3*/site-packages",
	"/usr/local/lib/python3*/dist-packages",
	"/usr/local/lib/python3*/site-packages",
	"/usr/lib/python3/dist-packages",
	"/usr/lib/python3*/site-packages",
	"/opt/conda/lib/python3*/site-packages",
}

// wheelLibDirs are where NVIDIA's wheels put the libraries, under a
// site-packages directory.
var wheelLibDirs = []string{"nvidia/cu13/lib", "nvidia/cuda_runtime/lib", "nvidia/cublas/lib"}

// environment is what the search reads of the machine (a seam for tests).
type environment struct {
	getenv func(string) string
	glob   func(string) ([]string, error)
	exists func(string) bool
}

var hostEnvironment = environment{
	getenv: os.Getenv,
	glob:   filepath.Glob,
	exists: func(p string) bool { _, err := os.Stat(p); return err == nil },
}

// candidates lists what to try for one library: names (unversioned first)
// in each of dirs (given explicitly: listed even where missing, so the
// error names them), then the bare names for the dynamic loader, then the
// files that exist in the toolkit and wheel directories.
func (e environment) candidates(names, dirs []string) []string {
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			out = append(out, filepath.Join(d, n))
		}
	}
	out = append(out, names...)
	for _, d := range e.wellKnownDirs() {
		for _, n := range names {
			if p := filepath.Join(d, n); e.exists(p) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// wellKnownDirs are the toolkit and wheel directories of this machine.
func (e environment) wellKnownDirs() []string {
	var dirs []string
	for _, d := range toolkitDirs {
		if d, ok := e.expand(d); ok {
			dirs = append(dirs, d)
		}
	}
	for _, pattern := range sitePackages {
		pattern, ok := e.expand(pattern)
		if !ok {
			continue
		}
		matches, _ := e.glob(pattern)
		slices.Sort(matches)
		slices.Reverse(matches) // the newest Python first
		for _, sp := range matches {
			for _, w := range wheelLibDirs {
				dirs = append(dirs, filepath.Join(sp, w))
			}
		}
	}
	if prefix := e.getenv("CONDA_PREFIX"); prefix != "" {
		dirs = append(dirs, filepath.Join(prefix, "lib"))
	}
	return dirs
}

// expand replaces a leading $VAR; ok is false when it is unset.
func (e environment) expand(p string) (string, bool) {
	if !strings.HasPrefix(p, "$") {
		return p, true
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	v := e.getenv(name)
	if v == "" {
		return "", false
	}
	return filepath.Join(v, rest), true
}

// preferMajor moves the candidates whose file name ends in major's soname
// suffix (".so.13"; ".so.11" also matches CUDA 11's ".so.11.0") before the
// others, keeping the order within each group: cuBLAS from the same CUDA
// release as the runtime.
func preferMajor(cands []string, major int) []string {
	suffix := ".so." + strconv.Itoa(major)
	same := func(c string) bool {
		b := filepath.Base(c)
		return strings.HasSuffix(b, suffix) || strings.Contains(b, suffix+".")
	}
	out := make([]string, 0, len(cands))
	for _, c := range cands {
		if same(c) {
			out = append(out, c)
		}
	}
	for _, c := range cands {
		if !same(c) {
			out = append(out, c)
		}
	}
	return out
}

// dependencyOf is the library a cuBLAS file needs beside it: libcublasLt of
// the same version. Opening it first from the same directory lets a
// libcublas that has no run path to its directory load.
func dependencyOf(path string) string {
	dir, base := filepath.Split(path)
	if dir == "" || !strings.HasPrefix(base, "libcublas.so") {
		return ""
	}
	return filepath.Join(dir, "libcublasLt"+strings.TrimPrefix(base, "libcublas"))
}

// loadedPath is the file the process mapped for a library opened by bare
// name (from /proc/self/maps), or name itself where that cannot be told.
func loadedPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return name
	}
	stem := strings.SplitN(name, ".so", 2)[0] + ".so"
	for line := range strings.Lines(string(maps)) {
		fields := strings.Fields(line)
		if len(fields) < 6 {
			continue
		}
		p := fields[len(fields)-1]
		if strings.HasPrefix(filepath.Base(p), stem) {
			return p
		}
	}
	return name
}
