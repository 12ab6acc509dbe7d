// Package binaries finds gpufleet's own binaries (cmd/*, built into bin/ by
// `make build`) for tests, benchmarks and the demo that run them as real
// processes, and builds the missing ones the way the Makefile does.
package binaries

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Commands of this module (directories under cmd/).
const (
	GPUAgent        = "gpu-agent"
	InferenceServer = "inference-server"
	MetricsAdapter  = "metrics-adapter"
	ModelRouter     = "model-router"
	SchedulerPlugin = "scheduler-plugin"
	GPUSim          = "gpusim"
	GPUFleet        = "gpufleet"
)

// Ensure returns the paths of the named commands in binDir (empty:
// localcluster.DefaultBinDir, i.e. $GPUFLEET_BIN_DIR or bin/), building the
// missing ones with `go build` as `make build` does: gpu-agent with cgo and
// Go's internal linker, the others without cgo. Concurrent callers
// serialise on the lock file localcluster.EnsureBinaries uses, so a binary
// is built once and never read half-written. A binary that is present is
// used as it is: run `make build` after changing the code.
func Ensure(ctx context.Context, binDir string, names ...string) (map[string]string, error) {
	if binDir == "" {
		var err error
		if binDir, err = localcluster.DefaultBinDir(); err != nil {
			return nil, err
		}
	}
	root, err := localcluster.ModuleRoot()
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		if st, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%q is not a gpufleet command (no directory cmd/%s)", name, name)
		}
		paths[name] = filepath.Join(binDir, name)
		if !localcluster.IsExecutable(paths[name]) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := localcluster.LockFile(filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, name := range missing {
		if localcluster.IsExecutable(paths[name]) { // built by another process while we waited
			continue
		}
		if err := build(ctx, root, name, paths[name]); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func build(ctx context.Context, root, name, out string) error {
	tmp := out + ".tmp"
	args := []string{"build", "-o", tmp}
	env := os.Environ()
	if name == GPUAgent {
		// go-nvml needs cgo; the internal linker keeps its RSS low (Makefile AGENT_LDFLAGS).
		args = append(args, "-ldflags=-linkmode=internal")
		if os.Getenv("CGO_CFLAGS") == "" {
			env = append(env, "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations")
		}
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/"+name)...)
	cmd.Dir, cmd.Env = root, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s (run `make build` to see why): %w\n%s", name, err, out)
	}
	return os.Rename(tmp, out)
}
