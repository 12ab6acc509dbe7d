package cuda

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeMachine is an environment with these variables and these files.
func fakeMachine(env map[string]string, files ...string) environment {
	return environment{
		getenv: func(k string) string { return env[k] },
		glob: func(pattern string) ([]string, error) {
			var out []string
			for _, f := range files {
				for dir := f; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
					if ok, _ := filepath.Match(pattern, dir); ok && !slices.Contains(out, dir) {
						out = append(out, dir)
					}
				}
			}
			return out, nil
		},
		exists: func(p string) bool { return slices.Contains(files, p) },
	}
}

func TestCandidatesSearchOrder(t *testing.T) {
	venv := "/srv/venv/lib/python3.12/site-packages"
	system := "/usr/local/lib/python3.11/dist-packages"
	m := fakeMachine(map[string]string{"VIRTUAL_ENV": "/srv/venv", "CUDA_HOME": "/opt/cuda-13.0"},
		"/opt/cuda-13.0/lib64/libcudart.so.13",
		venv+"/nvidia/cu13/lib/libcudart.so.13",
		system+"/nvidia/cuda_runtime/lib/libcudart.so.12",
		"/usr/local/cuda/lib64/libcudart.so.12", // a second toolkit
	)
	got := m.candidates(cudartNames, []string{"/models/cuda"})
	want := []string{
		// 1. the directories given, every name, even where missing
		"/models/cuda/libcudart.so", "/models/cuda/libcudart.so.13", "/models/cuda/libcudart.so.12", "/models/cuda/libcudart.so.11.0",
		// 2. the dynamic loader
		"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
		// 3. toolkits, 4. wheels: only files that exist
		"/opt/cuda-13.0/lib64/libcudart.so.13",
		"/usr/local/cuda/lib64/libcudart.so.12",
		venv + "/nvidia/cu13/lib/libcudart.so.13",
		system + "/nvidia/cuda_runtime/lib/libcudart.so.12",
	}
	if !slices.Equal(got, want) {
		t.Errorf("candidates:\n got %q\nwant %q", got, want)
	}
}

func TestCandidatesSkipUnsetVariables(t *testing.T) {
	m := fakeMachine(nil, "/usr/lib/python3/dist-packages/nvidia/cublas/lib/libcublas.so.12")
	got := m.candidates(cublasNames, nil)
	for _, c := range got {
		if strings.HasPrefix(c, "/lib") || strings.Contains(c, "$") {
			t.Errorf("candidate %q comes from an unset variable", c)
		}
	}
	if last := got[len(got)-1]; last != "/usr/lib/python3/dist-packages/nvidia/cublas/lib/libcublas.so.12" {
		t.Errorf("the wheel's cuBLAS is not a candidate: %q", got)
	}
}

func TestPreferMajor(t *testing.T) {
	cands := []string{"libcublas.so", "libcublas.so.13", "libcublas.so.12", "/w/nvidia/cublas/lib/libcublas.so.12", "libcublas.so.11"}
	for _, tc := range []struct {
		major int
		want  []string
	}{
		{12, []string{"libcublas.so.12", "/w/nvidia/cublas/lib/libcublas.so.12", "libcublas.so", "libcublas.so.13", "libcublas.so.11"}},
		{13, []string{"libcublas.so.13", "libcublas.so", "libcublas.so.12", "/w/nvidia/cublas/lib/libcublas.so.12", "libcublas.so.11"}},
		{11, []string{"libcublas.so.11", "libcublas.so", "libcublas.so.13", "libcublas.so.12", "/w/nvidia/cublas/lib/libcublas.so.12"}},
		{1, cands}, // no .so.1 anywhere: order kept
	} {
		if got := preferMajor(cands, tc.major); !slices.Equal(got, tc.want) {
			t.Errorf("major %d:\n got %q\nwant %q", tc.major, got, tc.want)
		}
	}
	if got := preferMajor([]string{"libcudart.so.12", "libcudart.so.11.0"}, 11); got[0] != "libcudart.so.11.0" {
		t.Errorf("CUDA 11's .so.11.0 is not of major 11: %q", got)
	}
}

func TestDependencyOf(t *testing.T) {
	for in, want := range map[string]string{
		"/w/nvidia/cu13/lib/libcublas.so.13": "/w/nvidia/cu13/lib/libcublasLt.so.13",
		"/usr/local/cuda/lib64/libcublas.so": "/usr/local/cuda/lib64/libcublasLt.so",
		"libcublas.so.12":                    "", // the loader finds its own
		"/w/libcudart.so.13":                 "",
	} {
		if got := dependencyOf(in); got != want {
			t.Errorf("dependencyOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// A wheel-style directory named with WithLibraryDirs is searched first,
// and the backend says which files it loaded.
func TestOpenFromLibraryDir(t *testing.T) {
	f := newFake(t)
	dir := filepath.Join(t.TempDir(), "site-packages", "nvidia", "cu13", "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"libcudart.so.13": f.cudart, "libcublas.so.13": f.cublas} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Open(WithLibraryDirs(filepath.Join(t.TempDir(), "empty"), dir))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	cudart, cublas := b.Libraries()
	if cudart != filepath.Join(dir, "libcudart.so.13") || cublas != filepath.Join(dir, "libcublas.so.13") {
		t.Errorf("Libraries() = %q, %q; want the files in %s", cudart, cublas, dir)
	}
}

// A directory without the libraries is named in the error, with what to do.
func TestOpenLibraryDirWithoutLibraries(t *testing.T) {
	if _, err := Open(WithLibraries("", ""), WithLibraryDirs("/nonexistent/cuda/lib")); err == nil {
		t.Skip("a CUDA runtime and cuBLAS are installed on this machine: nothing to fail")
	} else {
		for _, w := range []string{"/nonexistent/cuda/lib/libcudart.so.13", "--cuda-lib-dir"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
}
