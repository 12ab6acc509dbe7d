package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/nvml"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

type owners map[string]attribution.PodRef

func (o owners) Lookup(id string) (attribution.PodRef, bool) { r, ok := o[id]; return r, ok }

// fixture is a simulated 2-GPU node with a fake clock.
type fixture struct {
	dir   string
	clock *clocktesting.FakeClock
	node  *sim.Node
	lib   nvml.Library
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), clock: clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))}
	var err error
	if f.node, err = sim.New(sim.Options{NodeName: "n1", Dir: f.dir, GPUs: 2, Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.lib, err = nvml.New(f.node.Interface()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) report(t *testing.T, pid int, pod *activity.PodIdentity, uses ...activity.GPUUse) {
	t.Helper()
	data, _ := json.Marshal(activity.Activity{PID: uint32(pid), Pod: pod, GPUs: uses})
	if err := os.WriteFile(filepath.Join(f.dir, strconv.Itoa(pid)+".json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) uuid(i int) string { return f.lib.Devices()[i].Info().UUID }

func TestMetricsExposition(t *testing.T) {
	f := newFixture(t)
	s := NewSampler(f.lib, time.Second, WithClock(f.clock.Now), WithProcessOwners(SimOwners{f.node}),
		WithDeviceOwners(owners{}))
	pid := os.Getpid()
	pod := &activity.PodIdentity{Namespace: "ml", Name: "bert-0", Container: "server"}
	f.report(t, pid, pod, activity.GPUUse{Index: 1, BusySecondsTotal: 5, MemoryBytes: 3 << 30})
	f.clock.Step(time.Second)
	s.SampleOnce(t.Context())
	f.clock.Step(time.Second)
	f.report(t, pid, pod, activity.GPUUse{Index: 1, BusySecondsTotal: 5.25, MemoryBytes: 3 << 30})
	s.SampleOnce(t.Context())

	u0, u1 := f.uuid(0), f.uuid(1)
	want := fmt.Sprintf(`
# HELP gpufleet_gpu_utilization_ratio Fraction of the last sampling interval during which a kernel ran on the GPU (0..1).
# TYPE gpufleet_gpu_utilization_ratio gauge
gpufleet_gpu_utilization_ratio{gpu="0",uuid="%[1]s"} 0
gpufleet_gpu_utilization_ratio{gpu="1",uuid="%[2]s"} 0.25
# HELP gpufleet_gpu_memory_used_bytes GPU memory in use.
# TYPE gpufleet_gpu_memory_used_bytes gauge
gpufleet_gpu_memory_used_bytes{gpu="0",uuid="%[1]s"} 0
gpufleet_gpu_memory_used_bytes{gpu="1",uuid="%[2]s"} 3.221225472e+09
# HELP gpufleet_gpu_memory_total_bytes GPU memory in total.
# TYPE gpufleet_gpu_memory_total_bytes gauge
gpufleet_gpu_memory_total_bytes{gpu="0",uuid="%[1]s"} 1.7179869184e+10
gpufleet_gpu_memory_total_bytes{gpu="1",uuid="%[2]s"} 1.7179869184e+10
# HELP gpufleet_gpu_power_watts GPU power draw.
# TYPE gpufleet_gpu_power_watts gauge
gpufleet_gpu_power_watts{gpu="0",uuid="%[1]s"} 40
gpufleet_gpu_power_watts{gpu="1",uuid="%[2]s"} 105
# HELP gpufleet_gpu_healthy 1 if the GPU answered the last sampling and had no XID critical error in the last minute, else 0.
# TYPE gpufleet_gpu_healthy gauge
gpufleet_gpu_healthy{gpu="0",uuid="%[1]s"} 1
gpufleet_gpu_healthy{gpu="1",uuid="%[2]s"} 1
# HELP gpufleet_gpu_info Static facts about a GPU; always 1.
# TYPE gpufleet_gpu_info gauge
gpufleet_gpu_info{architecture="volta",compute_capability="7.0",cuda_version="12.2",driver_version="535.183.01",gpu="0",name="Tesla V100-SXM2-16GB",pci_bus_id="0000:10:00.0",uuid="%[1]s"} 1
gpufleet_gpu_info{architecture="volta",compute_capability="7.0",cuda_version="12.2",driver_version="535.183.01",gpu="1",name="Tesla V100-SXM2-16GB",pci_bus_id="0000:11:00.0",uuid="%[2]s"} 1
# HELP gpufleet_pod_gpu_utilization_ratio Fraction of the last sampling interval during which the pod's kernels ran on the GPU (0..1).
# TYPE gpufleet_pod_gpu_utilization_ratio gauge
gpufleet_pod_gpu_utilization_ratio{container="server",gpu="1",namespace="ml",pod="bert-0",uuid="%[2]s"} 0.25
# HELP gpufleet_pod_gpu_memory_used_bytes GPU memory the pod's processes use.
# TYPE gpufleet_pod_gpu_memory_used_bytes gauge
gpufleet_pod_gpu_memory_used_bytes{container="server",gpu="1",namespace="ml",pod="bert-0",uuid="%[2]s"} 3.221225472e+09
# HELP gpufleet_agent_samplings_total Samplings of all GPUs the agent has done.
# TYPE gpufleet_agent_samplings_total counter
gpufleet_agent_samplings_total 2
`, u0, u1)
	if err := testutil.CollectAndCompare(NewCollector(s), strings.NewReader(want),
		"gpufleet_gpu_utilization_ratio", "gpufleet_gpu_memory_used_bytes", "gpufleet_gpu_memory_total_bytes",
		"gpufleet_gpu_power_watts", "gpufleet_gpu_healthy", "gpufleet_gpu_info",
		"gpufleet_pod_gpu_utilization_ratio", "gpufleet_pod_gpu_memory_used_bytes", "gpufleet_agent_samplings_total"); err != nil {
		t.Error(err)
	}
	// Every metric passes the Prometheus linter (names, units, help).
	problems, err := testutil.CollectAndLint(NewCollector(s))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Two pods share GPU 0 (fractional pods): each gets its own processes' use.
// GPU 1 is allocated whole to a pod whose processes the agent cannot see:
// it gets the whole GPU, from the kubelet's allocation.
func TestAttributionSharedAndExclusive(t *testing.T) {
	f := newFixture(t)
	pids := startProcesses(t, 2)
	exclusive := attribution.PodRef{Namespace: "ml", Name: "llm-0", Container: "server"}
	s := NewSampler(f.lib, time.Second, WithClock(f.clock.Now), WithProcessOwners(SimOwners{f.node}),
		WithDeviceOwners(owners{f.uuid(1): exclusive}))
	a := &activity.PodIdentity{Namespace: "ml", Name: "small-a", Container: "c"}
	b := &activity.PodIdentity{Namespace: "ml", Name: "small-b", Container: "c"}
	f.report(t, pids[0], a, activity.GPUUse{Index: 0, BusySecondsTotal: 1, MemoryBytes: 1 << 30})
	f.report(t, pids[1], b, activity.GPUUse{Index: 0, BusySecondsTotal: 1, MemoryBytes: 2 << 30})
	f.report(t, os.Getpid(), nil, activity.GPUUse{Index: 1, BusySecondsTotal: 0, MemoryBytes: 4 << 30})
	f.clock.Step(time.Second)
	s.SampleOnce(t.Context())
	f.report(t, pids[0], a, activity.GPUUse{Index: 0, BusySecondsTotal: 1.1, MemoryBytes: 1 << 30})
	f.report(t, pids[1], b, activity.GPUUse{Index: 0, BusySecondsTotal: 1.3, MemoryBytes: 2 << 30})
	f.report(t, os.Getpid(), nil, activity.GPUUse{Index: 1, BusySecondsTotal: 0.9, MemoryBytes: 4 << 30})
	f.clock.Step(time.Second)
	snap := s.SampleOnce(t.Context())

	got := map[string]PodUse{}
	for _, p := range snap.Pods {
		got[p.Pod.Name] = p
	}
	check := func(name string, gpu int, util float64, mem uint64) {
		t.Helper()
		p, ok := got[name]
		if !ok {
			t.Errorf("no use for pod %s in %+v", name, snap.Pods)
			return
		}
		if p.GPU != gpu || p.MemoryUsedBytes != mem || p.Utilization < util-0.011 || p.Utilization > util+0.011 {
			t.Errorf("pod %s: %+v; want GPU %d, utilization %.2f, memory %d", name, p, gpu, util, mem)
		}
	}
	check("small-a", 0, 0.1, 1<<30)
	check("small-b", 0, 0.3, 2<<30)
	check("llm-0", 1, 0.9, 4<<30)
	if len(got) != 3 {
		t.Errorf("pods: %+v", snap.Pods)
	}
	_, _, unattrib := s.counters()
	if unattrib[1] != 1 || unattrib[0] != 0 {
		t.Errorf("unattributed processes: %v; want 1 on GPU 1", unattrib)
	}
}

// startProcesses starts n idle child processes and returns their pids.
func startProcesses(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for range n {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "600"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Kill(); _, _ = p.Wait() })
		pids = append(pids, p.Pid)
	}
	return pids
}

func TestFailedGPUIsReportedOthersContinue(t *testing.T) {
	f := newFixture(t)
	s := NewSampler(f.lib, time.Second, WithClock(f.clock.Now))
	if err := f.node.InjectFault(1, 79); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Second)
	s.SampleOnce(t.Context())
	f.clock.Step(time.Second)
	snap := s.SampleOnce(t.Context())
	if !snap.GPUs[0].Healthy || snap.GPUs[1].Healthy || !nvml.IsGPULost(snap.GPUs[1].Err) {
		t.Fatalf("health: GPU0 %v, GPU1 %v (%v)", snap.GPUs[0].Healthy, snap.GPUs[1].Healthy, snap.GPUs[1].Err)
	}
	want := fmt.Sprintf(`
# HELP gpufleet_gpu_healthy 1 if the GPU answered the last sampling and had no XID critical error in the last minute, else 0.
# TYPE gpufleet_gpu_healthy gauge
gpufleet_gpu_healthy{gpu="0",uuid="%[1]s"} 1
gpufleet_gpu_healthy{gpu="1",uuid="%[2]s"} 0
# HELP gpufleet_gpu_sample_errors_total Samplings in which the GPU did not answer.
# TYPE gpufleet_gpu_sample_errors_total counter
gpufleet_gpu_sample_errors_total{gpu="0",uuid="%[1]s"} 0
gpufleet_gpu_sample_errors_total{gpu="1",uuid="%[2]s"} 2
# HELP gpufleet_gpu_utilization_ratio Fraction of the last sampling interval during which a kernel ran on the GPU (0..1).
# TYPE gpufleet_gpu_utilization_ratio gauge
gpufleet_gpu_utilization_ratio{gpu="0",uuid="%[1]s"} 0
`, f.uuid(0), f.uuid(1))
	if err := testutil.CollectAndCompare(NewCollector(s), strings.NewReader(want),
		"gpufleet_gpu_healthy", "gpufleet_gpu_sample_errors_total", "gpufleet_gpu_utilization_ratio"); err != nil {
		t.Error(err)
	}
	if err := f.node.ClearFault(1); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Second)
	if snap := s.SampleOnce(t.Context()); !snap.GPUs[1].Healthy {
		t.Errorf("GPU 1 after recovery: %v", snap.GPUs[1].Err)
	}
}

// An XID keeps a GPU unhealthy for a minute even if it answers.
func TestXidMarksUnhealthy(t *testing.T) {
	f := newFixture(t)
	s := NewSampler(f.lib, time.Second, WithClock(f.clock.Now))
	events := make(chan nvml.Event, 1)
	events <- nvml.Event{UUID: f.uuid(0), Xid: 48}
	close(events)
	s.recordEvents(t.Context(), events)
	f.clock.Step(time.Second)
	if snap := s.SampleOnce(t.Context()); snap.GPUs[0].Healthy || !snap.GPUs[1].Healthy {
		t.Errorf("after XID 48 on GPU 0: healthy %v, %v", snap.GPUs[0].Healthy, snap.GPUs[1].Healthy)
	}
	f.clock.Step(2 * time.Minute)
	if snap := s.SampleOnce(t.Context()); !snap.GPUs[0].Healthy {
		t.Error("GPU 0 still unhealthy two minutes after its XID")
	}
	_, xids, _ := s.counters()
	if xids[xidKey{0, 48}] != 1 {
		t.Errorf("xid counters %v", xids)
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t)
	s := NewSampler(f.lib, time.Second, WithClock(f.clock.Now))
	h, err := Handler(s)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Error("before the first sampling: want healthy, not ready")
	}
	s.SampleOnce(t.Context())
	if get("/readyz") != 200 {
		t.Error("not ready after a sampling")
	}
	f.clock.Step(10 * time.Second)
	if get("/readyz") != 503 {
		t.Error("ready although sampling stopped 10 intervals ago")
	}
	if get("/metrics") != 200 {
		t.Error("/metrics failed")
	}
}
