package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The GPU check is ready before a GPU machine is: hack/gpu-check dry-run
// builds the archive, checks that it is complete, and checks that the run
// stops with the no-GPU message. (It builds six binaries: not in -short.)
func TestGPUCheckDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the GPU check's binaries")
	}
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		t.Skip("this machine has nvidia-smi: run hack/gpu-check build and run instead of the dry run")
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join("..", "gpu-check"), "dry-run")
	cmd.Env = append(os.Environ(), "GPU_CHECK_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/gpu-check dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{"dry run OK", "no NVIDIA GPU here", "hack/gpu-check run"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	// bash's own complaints (set -u, syntax) name the script and a line.
	if strings.Contains(string(out), "gpu-check: line ") || strings.Contains(string(out), "unbound variable") {
		t.Errorf("the script complains about itself:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "gpu-check.tar.gz")); err != nil {
		t.Errorf("no archive: %v", err)
	}
}
