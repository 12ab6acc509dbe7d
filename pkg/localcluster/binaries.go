package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Binary names and the Go packages they are built from (go.mod tool lines).
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	Kubectl               = "kubectl"
	Kubelet               = "kubelet"
	KubeScheduler         = "kube-scheduler"
	Containerd            = "containerd"
	ContainerdShim        = "containerd-shim-runc-v2"
	Ctr                   = "ctr"
	KubeProxy             = "kube-proxy"
	Helm                  = "helm"
)

var binaryPackages = map[string]string{
	Etcd:                  "go.etcd.io/etcd/server/v3",
	KubeAPIServer:         "k8s.io/kubernetes/cmd/kube-apiserver",
	KubeControllerManager: "k8s.io/kubernetes/cmd/kube-controller-manager",
	Kubectl:               "k8s.io/kubernetes/cmd/kubectl",
	Kubelet:               "k8s.io/kubernetes/cmd/kubelet",
	KubeScheduler:         "k8s.io/kubernetes/cmd/kube-scheduler",
	KubeProxy:             "k8s.io/kubernetes/cmd/kube-proxy",
	Containerd:            "github.com/containerd/containerd/v2/cmd/containerd",
	ContainerdShim:        "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
	Ctr:                   "github.com/containerd/containerd/v2/cmd/ctr",
	Helm:                  "helm.sh/helm/v4/cmd/helm",
}

// binaryModules are the module directories (relative to the module root)
// of binaries not built from the main module: containerd's and helm's own
// modules keep their dependencies apart from Kubernetes'.
var binaryModules = map[string]string{
	Containerd:     "hack/containerd",
	ContainerdShim: "hack/containerd",
	Ctr:            "hack/containerd",
	Helm:           "hack/helm",
}

// BinDirEnv names the environment variable that overrides where the control
// plane binaries are looked up (default: bin/ at the module root).
const BinDirEnv = "GPUFLEET_BIN_DIR"

// ModuleRoot finds the directory holding gpufleet's go.mod, starting from the
// working directory (tests run in their package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isGPUFleetModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the gpufleet module root (go.mod) above the working directory; set " + BinDirEnv + " to the directory holding etcd and kube-apiserver")
		}
		dir = parent
	}
}

func isGPUFleetModule(gomod []byte) bool {
	const want = "module github.com/gpufleet/gpufleet\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// DefaultBinDir is $GPUFLEET_BIN_DIR, or bin/ at the module root.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// EnsureBinaries returns the paths of the named binaries in binDir, building
// the missing ones from the module's tool lines with `go build`. Concurrent
// callers (parallel test packages) serialise on a lock file, so a binary is
// built once and never read half-written.
func EnsureBinaries(ctx context.Context, binDir string, names ...string) (map[string]string, error) {
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		if _, ok := binaryPackages[name]; !ok {
			return nil, fmt.Errorf("unknown control-plane binary %q", name)
		}
		paths[name] = filepath.Join(binDir, name)
		if !isExecutable(paths[name]) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	root, err := ModuleRoot()
	if err != nil {
		return nil, fmt.Errorf("%v (missing: %v; run `make tools`)", err, missing)
	}
	for _, name := range missing {
		if isExecutable(paths[name]) { // built by another process while we waited
			continue
		}
		tmp := paths[name] + ".tmp"
		cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, binaryPackages[name])
		cmd.Dir = filepath.Join(root, binaryModules[name])
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s (run `make tools` to see why): %w\n%s", name, err, out)
		}
		if err := os.Rename(tmp, paths[name]); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// IsExecutable reports whether path is a regular file someone may execute.
func IsExecutable(path string) bool { return isExecutable(path) }

// LockFile takes an exclusive flock on path (created if missing) and returns
// its release: builders of binaries into one folder serialise on it.
func LockFile(path string) (func(), error) { return lockFile(path) }

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// ImagesDir is where make images writes the image tarballs:
// _output/images at the module root.
func ImagesDir() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "_output", "images"), nil
}
