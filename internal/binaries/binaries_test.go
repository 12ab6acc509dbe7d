package binaries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureUsesPresentBinaries(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, GPUSim)
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths, err := Ensure(t.Context(), dir, GPUSim)
	if err != nil {
		t.Fatal(err)
	}
	if paths[GPUSim] != want {
		t.Errorf("path %q, want %q", paths[GPUSim], want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".build.lock")); err == nil {
		t.Error("took the build lock although nothing was missing")
	}
}

func TestEnsureRejectsUnknownCommands(t *testing.T) {
	if _, err := Ensure(t.Context(), t.TempDir(), "kube-proxy"); err == nil || !strings.Contains(err.Error(), "cmd/kube-proxy") {
		t.Errorf("error %v, want one naming the missing cmd/kube-proxy", err)
	}
}
