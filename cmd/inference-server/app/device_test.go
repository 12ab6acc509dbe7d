package app

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
)

// --cuda-lib-dir reaches the CUDA backend's search: with --device=cuda and
// no CUDA anywhere, the error names the directory's files and the flag;
// with --device=auto the server falls back to the CPU.
func TestCUDALibDirFlag(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--cuda-lib-dir=/nonexistent/cu13/lib,/nonexistent/other", "--cuda-lib-dir=/third"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/nonexistent/cu13/lib", "/nonexistent/other", "/third"}; strings.Join(o.CUDALibDirs, "|") != strings.Join(want, "|") {
		t.Fatalf("CUDALibDirs = %q, want %q", o.CUDALibDirs, want)
	}
	ctx := context.Background()
	b, err := openBackend(ctx, DeviceCUDA, o.CUDALibDirs)
	if err == nil {
		_ = b.Close()
		t.Skip("this machine has a CUDA device and libraries: nothing to fail")
	}
	for _, w := range []string{"--device=cuda", "/nonexistent/cu13/lib/libcudart.so.13", "/third/libcudart.so", "--cuda-lib-dir"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	b, err = openBackend(ctx, DeviceAuto, o.CUDALibDirs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != cpu.Name {
		t.Errorf("--device=auto without CUDA chose %s", b.Name())
	}
}
