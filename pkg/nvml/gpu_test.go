//go:build gpu

package nvml_test

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gpufleet/gpufleet/pkg/nvml"
)

// The adapter against the real driver (make test-gpu, hack/gpu-check): what
// the agent exports and the device plugin advertises comes from these
// calls, so each is checked for a plausible value, not just for no error.

func openReal(t *testing.T) nvml.Library {
	t.Helper()
	lib, err := nvml.New(gonvml.New())
	if err != nil {
		t.Fatalf("NVML against the real driver: %v", err)
	}
	t.Cleanup(func() {
		if err := lib.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	if len(lib.Devices()) == 0 {
		t.Fatal("NVML reports no GPU")
	}
	return lib
}

var (
	uuidRE    = regexp.MustCompile(`^(GPU|MIG)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	busIDRE   = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]$`)
	versionRE = regexp.MustCompile(`^\d+\.\d+`)
)

func TestGPUSystemAndDevices(t *testing.T) {
	lib := openReal(t)
	sys, err := lib.System()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("driver %s, CUDA %s, %d GPU(s)", sys.DriverVersion, sys.CUDAVersion, len(lib.Devices()))
	if !versionRE.MatchString(sys.DriverVersion) || !versionRE.MatchString(sys.CUDAVersion) {
		t.Errorf("driver %q / CUDA %q are not versions", sys.DriverVersion, sys.CUDAVersion)
	}
	seen := map[string]bool{}
	for i, d := range lib.Devices() {
		info := d.Info()
		t.Logf("GPU %d: %q %s bus %s %s cc %s, %d MiB, %d NVLink(s)", info.Index, info.Name, info.UUID, info.PCIBusID,
			info.Architecture, info.ComputeCapacity, info.MemoryTotalBytes>>20, len(info.NVLinks))
		if info.Index != i {
			t.Errorf("GPU %d has index %d", i, info.Index)
		}
		if info.Name == "" || !strings.Contains(strings.ToUpper(info.Name), "NVIDIA") && !strings.Contains(info.Name, "Tesla") {
			t.Errorf("GPU %d: name %q", i, info.Name)
		}
		if !uuidRE.MatchString(info.UUID) || seen[info.UUID] {
			t.Errorf("GPU %d: UUID %q is malformed or repeated", i, info.UUID)
		}
		seen[info.UUID] = true
		if !busIDRE.MatchString(info.PCIBusID) {
			t.Errorf("GPU %d: PCI bus id %q is not normalised", i, info.PCIBusID)
		}
		if info.Architecture == "" || info.Architecture == "unknown" || !versionRE.MatchString(info.ComputeCapacity) {
			t.Errorf("GPU %d: architecture %q, compute capability %q", i, info.Architecture, info.ComputeCapacity)
		}
		if info.MemoryTotalBytes < 1<<30 {
			t.Errorf("GPU %d: %d bytes of memory", i, info.MemoryTotalBytes)
		}
		for _, l := range info.NVLinks {
			if l.PeerIndex >= len(lib.Devices()) || l.PeerIndex == i || l.PeerBusID == "" {
				t.Errorf("GPU %d: NVLink %d to %q (GPU %d) is not a link to another GPU or a switch", i, l.Link, l.PeerBusID, l.PeerIndex)
			}
		}
	}
}

// Sampling twice, a second apart, reads every gauge the agent exports;
// utilization is a fraction, memory used is at most the total, and any
// process listed (e.g. the CUDA tests running beside) has a PID.
func TestGPUSampling(t *testing.T) {
	lib := openReal(t)
	for _, d := range lib.Devices() {
		if _, err := d.Sample(); err != nil {
			t.Fatalf("GPU %d: first sample: %v", d.Info().Index, err)
		}
	}
	time.Sleep(time.Second) //nolint:forbidigo // a sampling window, not a wait for a condition
	for _, d := range lib.Devices() {
		i := d.Info().Index
		s, err := d.Sample()
		if err != nil {
			t.Fatalf("GPU %d: %v", i, err)
		}
		t.Logf("GPU %d: utilization %.2f, memory %d/%d MiB, %.0f W, %.0f C, SM %.0f MHz, %d process(es)",
			i, s.Utilization, s.MemoryUsedBytes>>20, s.MemoryTotalBytes>>20, s.PowerWatts, s.TemperatureC, s.SMClockHz/1e6, len(s.Processes))
		if math.IsNaN(s.Utilization) || s.Utilization < 0 || s.Utilization > 1 {
			t.Errorf("GPU %d: utilization %v is not a fraction", i, s.Utilization)
		}
		if s.MemoryTotalBytes == 0 || s.MemoryUsedBytes > s.MemoryTotalBytes {
			t.Errorf("GPU %d: memory %d of %d", i, s.MemoryUsedBytes, s.MemoryTotalBytes)
		}
		if !(s.PowerWatts > 0) || !(s.TemperatureC > 0) || !(s.SMClockHz >= 0) {
			t.Errorf("GPU %d: power %v W, temperature %v C, SM clock %v Hz", i, s.PowerWatts, s.TemperatureC, s.SMClockHz)
		}
		for _, p := range s.Processes {
			if p.PID == 0 {
				t.Errorf("GPU %d: a process without PID: %+v", i, p)
			}
		}
	}
}

// XID events: registration works on the real driver (no XID is expected,
// so the stream must stay open and quiet until its context ends).
func TestGPUEventRegistration(t *testing.T) {
	lib := openReal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	events, err := lib.Events(ctx)
	if err != nil {
		t.Fatalf("registering for XID events: %v", err)
	}
	for ev := range events {
		t.Logf("XID %d on %s during the test (a real fault, or a driver that reports one at start)", ev.Xid, ev.UUID)
	}
	if ctx.Err() == nil {
		t.Log("the event stream closed before its context: the driver supports no XID events on these GPUs")
	}
}
