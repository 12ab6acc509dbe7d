package sim_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/gpufleet/gpufleet/pkg/nvml"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

func newNode(t *testing.T, dir string, clock *clocktesting.FakeClock) (*sim.Node, nvml.Library) {
	t.Helper()
	opts := sim.Options{NodeName: "node-a", Dir: dir}
	if clock != nil {
		opts.Now = clock.Now
	}
	node, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := nvml.New(node.Interface())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lib.Shutdown() })
	return node, lib
}

func writeActivity(t *testing.T, dir string, a activity.Activity) {
	t.Helper()
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(int(a.PID))+".json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDGX1Facts(t *testing.T) {
	_, lib := newNode(t, "", nil)
	devs := lib.Devices()
	if len(devs) != 8 {
		t.Fatalf("%d GPUs, want 8", len(devs))
	}
	sys, err := lib.System()
	if err != nil || sys.CUDAVersion != "12.2" || sys.DriverVersion != sim.DriverVersion {
		t.Errorf("System() = %+v, %v", sys, err)
	}
	uuids := map[string]bool{}
	for i, d := range devs {
		info := d.Info()
		if info.Index != i || info.Name != "Tesla V100-SXM2-16GB" || info.Architecture != "volta" || info.ComputeCapacity != "7.0" || info.MemoryTotalBytes != 16<<30 {
			t.Errorf("GPU %d: %+v", i, info)
		}
		if uuids[info.UUID] || len(info.UUID) != 40 {
			t.Errorf("GPU %d: UUID %q repeated or malformed", i, info.UUID)
		}
		uuids[info.UUID] = true
		if len(info.NVLinks) != 6 {
			t.Errorf("GPU %d has %d NVLinks, want 6", i, len(info.NVLinks))
		}
	}
	// Hybrid cube-mesh: GPU 0 has two links to 3 and 4, one to 1 and 2, none to 5..7.
	count := map[int]int{}
	for _, l := range devs[0].Info().NVLinks {
		count[l.PeerIndex]++
	}
	want := map[int]int{1: 1, 2: 1, 3: 2, 4: 2}
	if len(count) != len(want) {
		t.Errorf("GPU 0 peers %v, want %v", count, want)
	}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("GPU 0 peers %v, want %v", count, want)
		}
	}
	if got := devs[4].Info().PCIBusID; got != "0000:85:00.0" {
		t.Errorf("GPU 4 bus id %q", got)
	}
	// UUIDs are stable for a node name.
	_, again := newNode(t, "", nil)
	if again.Devices()[3].Info().UUID != devs[3].Info().UUID {
		t.Error("UUIDs change between two simulations of the same node")
	}
}

func TestUtilizationFollowsReportedWork(t *testing.T) {
	dir := t.TempDir()
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	_, lib := newNode(t, dir, clock)
	devs := lib.Devices()

	self := uint32(os.Getpid())
	child := exec.Command("sleep", "600")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	other := uint32(child.Process.Pid)

	writeActivity(t, dir, activity.Activity{PID: self, GPUs: []activity.GPUUse{{Index: 2, BusySecondsTotal: 10, MemoryBytes: 2 << 30}}})
	writeActivity(t, dir, activity.Activity{PID: other, GPUs: []activity.GPUUse{{Index: 2, BusySecondsTotal: 100, MemoryBytes: 1 << 30}, {Index: 5, BusySecondsTotal: 0}}})
	// The first observation of a process is its baseline.
	clock.Step(time.Second)
	for _, d := range devs {
		if _, err := d.Sample(); err != nil {
			t.Fatal(err)
		}
	}
	clock.Step(2 * time.Second)
	writeActivity(t, dir, activity.Activity{PID: self, GPUs: []activity.GPUUse{{Index: 2, BusySecondsTotal: 11, MemoryBytes: 2 << 30}}})                                      // +1 s of 2
	writeActivity(t, dir, activity.Activity{PID: other, GPUs: []activity.GPUUse{{Index: 2, BusySecondsTotal: 100.5, MemoryBytes: 1 << 30}, {Index: 5, BusySecondsTotal: 2}}}) // +0.25, +1.0

	s2, err := devs[2].Sample()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s2.Utilization-0.75) > 0.011 {
		t.Errorf("GPU 2 utilization %.3f, want 0.75", s2.Utilization)
	}
	if s2.MemoryUsedBytes != 3<<30 {
		t.Errorf("GPU 2 memory used %d, want 3 GiB", s2.MemoryUsedBytes)
	}
	if math.Abs(s2.PowerWatts-(40+0.75*260)) > 1 || s2.SMClockHz != 1530e6 {
		t.Errorf("GPU 2 power %.1f W, clock %.0f Hz", s2.PowerWatts, s2.SMClockHz)
	}
	procs := map[uint32]nvml.Process{}
	for _, p := range s2.Processes {
		procs[p.PID] = p
	}
	if p := procs[self]; math.Abs(p.Utilization-0.5) > 0.011 || p.MemoryUsedBytes != 2<<30 {
		t.Errorf("own process on GPU 2: %+v", p)
	}
	if p := procs[other]; math.Abs(p.Utilization-0.25) > 0.011 || p.MemoryUsedBytes != 1<<30 {
		t.Errorf("other process on GPU 2: %+v", p)
	}
	s5, _ := devs[5].Sample()
	if math.Abs(s5.Utilization-1) > 0.011 {
		t.Errorf("GPU 5 utilization %.3f, want 1", s5.Utilization)
	}
	s0, _ := devs[0].Sample()
	if s0.Utilization != 0 || len(s0.Processes) != 0 || s0.MemoryUsedBytes != 0 || s0.PowerWatts != 40 {
		t.Errorf("idle GPU 0: %+v", s0)
	}

	// A process that exits stops counting, though its file remains.
	_ = child.Process.Kill()
	_ = child.Wait()
	clock.Step(time.Second)
	s5, _ = devs[5].Sample()
	if s5.Utilization != 0 || len(s5.Processes) != 0 {
		t.Errorf("GPU 5 after its process exited: %+v", s5)
	}
}

func TestFaultIsReportedAndOthersKeepWorking(t *testing.T) {
	dir := t.TempDir()
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	node, lib := newNode(t, dir, clock)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events, err := lib.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.InjectFault(3, 48); err != nil {
		t.Fatal(err)
	}
	clock.Step(time.Second)
	devs := lib.Devices()
	if _, err := devs[3].Sample(); !nvml.IsGPULost(err) {
		t.Errorf("sampling a failed GPU: %v, want GPU lost", err)
	}
	if _, err := devs[2].Sample(); err != nil {
		t.Errorf("a healthy GPU fails beside a failed one: %v", err)
	}
	select {
	case ev := <-events:
		if ev.Xid != 48 || ev.UUID != devs[3].Info().UUID {
			t.Errorf("event %+v, want XID 48 on GPU 3", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no XID event")
	}
	if err := node.ClearFault(3); err != nil {
		t.Fatal(err)
	}
	clock.Step(time.Second)
	if _, err := devs[3].Sample(); err != nil {
		t.Errorf("GPU 3 after the fault cleared: %v", err)
	}
}

func TestReporterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	node, lib := newNode(t, dir, clock)
	r, err := activity.NewReporter(dir, []int{1}, &activity.PodIdentity{Namespace: "ml", Name: "resnet-0", Container: "server"})
	if err != nil {
		t.Fatal(err)
	}
	r.SetMemory(512 << 20)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	dev := lib.Devices()[1]
	clock.Step(time.Second)
	if _, err := dev.Sample(); err != nil {
		t.Fatal(err)
	}
	clock.Step(time.Second)
	r.AddBusy(0.4)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := dev.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Utilization-0.4) > 0.011 || s.MemoryUsedBytes != 512<<20 {
		t.Errorf("GPU 1: utilization %.3f, memory %d", s.Utilization, s.MemoryUsedBytes)
	}
	if pod, ok := node.PodOf(uint32(os.Getpid())); !ok || pod.Name != "resnet-0" {
		t.Errorf("PodOf = %+v, %v", pod, ok)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Step(time.Second)
	if s, _ := dev.Sample(); s.MemoryUsedBytes != 0 {
		t.Errorf("memory after Close: %d", s.MemoryUsedBytes)
	}
}

func TestBadActivityFileIsSkipped(t *testing.T) {
	dir := t.TempDir()
	clock := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	_, lib := newNode(t, dir, clock)
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"pid": `), 0o644); err != nil {
		t.Fatal(err)
	}
	writeActivity(t, dir, activity.Activity{PID: uint32(os.Getpid()), GPUs: []activity.GPUUse{{Index: 0, MemoryBytes: 1 << 20}}})
	clock.Step(time.Second)
	s, err := lib.Devices()[0].Sample()
	if err != nil || s.MemoryUsedBytes != 1<<20 {
		t.Errorf("a broken file beside a good one: %+v, %v", s, err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []sim.Options{{GPUs: 17}, {Model: "K80"}, {GPUs: -1}} {
		if _, err := sim.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
