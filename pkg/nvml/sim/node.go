// Package sim is a simulated GPU node for machines without GPUs: by default
// a DGX-1 with 8 x Tesla V100-SXM2-16GB in the NVLink hybrid cube-mesh,
// built on go-nvml's mock server so that gpufleet's real NVML adapter runs
// unchanged on top of it. Its GPUs are busy exactly as much as the local
// processes that report to it say (see activity.Activity); nothing is random.
package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/google/uuid"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

// Options configure a simulated node.
type Options struct {
	// NodeName seeds the GPUs' UUIDs, so they stay the same across restarts.
	NodeName string
	// Dir is where processes report their activity (see activity.Activity) and where
	// faults are injected (see Node.faults). Empty: the GPUs stay idle.
	Dir string
	// GPUs is the number of GPUs. Default 8.
	GPUs int
	// Model is a gpumodel name. Default "V100M16".
	Model string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Simulated driver facts (a driver that supports CUDA 12.2 on Volta).
const (
	DriverVersion     = "535.183.01"
	cudaDriverVersion = 12020
	// minObserve bounds how often the activity directory is read.
	minObserve = 100 * time.Millisecond
	// keepSamples is how many utilization samples each GPU keeps, like the
	// driver's own ring buffer.
	keepSamples = 120
)

// Power and clocks of the model: idle to fully busy, linear in utilization.
const (
	idleWatts, busyWatts = 40.0, 300.0
	idleTempC, busyTempC = 33.0, 78.0
	idleSMMHz, busySMMHz = 135, 1530
)

// dgx1Links is the NVLink count between GPU pairs of a DGX-1 with V100
// (hybrid cube-mesh, 6 links per GPU).
var dgx1Links = [8][8]int{
	{0, 1, 1, 2, 2, 0, 0, 0},
	{1, 0, 2, 1, 0, 2, 0, 0},
	{1, 2, 0, 2, 0, 0, 1, 0},
	{2, 1, 2, 0, 0, 0, 0, 1},
	{2, 0, 0, 0, 0, 1, 1, 2},
	{0, 2, 0, 0, 1, 0, 2, 1},
	{0, 0, 1, 0, 1, 2, 0, 2},
	{0, 0, 0, 1, 2, 1, 2, 0},
}

// dgx1BusIDs are the PCI addresses of a DGX-1's GPUs.
var dgx1BusIDs = []string{"0000:06:00.0", "0000:07:00.0", "0000:0a:00.0", "0000:0b:00.0", "0000:85:00.0", "0000:86:00.0", "0000:89:00.0", "0000:8a:00.0"}

var computeCapability = map[string][2]int{"pascal": {6, 0}, "volta": {7, 0}, "turing": {7, 5}, "ampere": {8, 0}, "hopper": {9, 0}}

// Node is a simulated GPU node.
type Node struct {
	opts    Options
	server  *server.Server
	devices []*server.Device
	links   [][]int // per GPU, per link: peer GPU index

	mu       sync.Mutex
	lastObs  time.Time
	prevBusy map[procGPU]float64
	gpus     []gpuState
	pods     map[uint32]activity.PodIdentity
	events   chan gonvml.EventData
}

type procGPU struct {
	pid uint32
	gpu int
}

type gpuState struct {
	util    float64 // 0..1 over the latest window
	memUsed uint64
	procs   []procState
	samples []gonvml.Sample
	procTS  uint64 // timestamp of the latest window, µs
	lostXid uint64 // non-zero: the GPU has failed with this XID
}

type procState struct {
	pid  uint32
	mem  uint64
	util float64
}

// New builds a simulated node.
func New(opts Options) (*Node, error) {
	if opts.GPUs == 0 {
		opts.GPUs = 8
	}
	if opts.Model == "" {
		opts.Model = "V100M16"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GPUs < 1 || opts.GPUs > 16 {
		return nil, fmt.Errorf("simulated node: %d GPUs; want 1..16", opts.GPUs)
	}
	model, err := gpumodel.Lookup(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("simulated node: %w", err)
	}
	cc, ok := computeCapability[model.Arch]
	if !ok {
		return nil, fmt.Errorf("simulated node: no compute capability known for %s", model.Arch)
	}
	cfg := gpus.Config{
		Name: model.Product, Architecture: archOf(model.Arch), Brand: gonvml.BRAND_TESLA,
		MemoryMB: uint64(model.MemoryMiB), CudaMajor: cc[0], CudaMinor: cc[1],
	}
	srv, err := server.New(server.WithGPUs(gpus.Multiple(opts.GPUs, cfg)...),
		server.WithDriverVersion(DriverVersion), server.WithNVMLVersion("12."+DriverVersion),
		server.WithCUDADriverVersion(cudaDriverVersion))
	if err != nil {
		return nil, fmt.Errorf("simulated node: %w", err)
	}
	n := &Node{
		opts: opts, server: srv, prevBusy: map[procGPU]float64{},
		gpus: make([]gpuState, opts.GPUs), pods: map[uint32]activity.PodIdentity{},
		events: make(chan gonvml.EventData, 64),
	}
	n.links = make([][]int, opts.GPUs)
	if opts.GPUs == 8 && model.Arch == "volta" {
		for i := range 8 {
			for j := range 8 {
				for range dgx1Links[i][j] {
					n.links[i] = append(n.links[i], j)
				}
			}
		}
	}
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.UUID = "GPU-" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(opts.NodeName+"/gpu/"+strconv.Itoa(i))).String()
		dev.PciBusID = fmt.Sprintf("0000:%02x:00.0", 0x10+i)
		if opts.GPUs == 8 {
			dev.PciBusID = dgx1BusIDs[i]
		}
		n.devices = append(n.devices, dev)
		n.wireDevice(i, dev)
	}
	n.wireServer()
	return n, nil
}

func archOf(name string) gonvml.DeviceArchitecture {
	switch name {
	case "pascal":
		return gonvml.DEVICE_ARCH_PASCAL
	case "volta":
		return gonvml.DEVICE_ARCH_VOLTA
	case "turing":
		return gonvml.DEVICE_ARCH_TURING
	case "ampere":
		return gonvml.DEVICE_ARCH_AMPERE
	case "hopper":
		return gonvml.DEVICE_ARCH_HOPPER
	}
	return gonvml.DEVICE_ARCH_UNKNOWN
}

// Interface is the node as go-nvml sees it.
func (n *Node) Interface() gonvml.Interface { return n.server }

// PodOf returns the pod a reporting process said it belongs to.
func (n *Node) PodOf(pid uint32) (activity.PodIdentity, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.pods[pid]
	return p, ok
}

// observe reads the activity directory and the fault files, at most every
// minObserve, and turns busy-time growth into utilization. Callers hold n.mu.
func (n *Node) observe() {
	now := n.opts.Now()
	if !n.lastObs.IsZero() && now.Sub(n.lastObs) < minObserve {
		return
	}
	window := now.Sub(n.lastObs).Seconds()
	first := n.lastObs.IsZero()
	n.lastObs = now
	ts := uint64(now.UnixMicro())

	acts := n.readActivity()
	busy := map[procGPU]float64{}
	next := make([]gpuState, len(n.gpus))
	pods := map[uint32]activity.PodIdentity{}
	for _, a := range acts {
		if a.Pod != nil {
			pods[a.PID] = *a.Pod
		}
		for _, g := range a.GPUs {
			k := procGPU{a.PID, g.Index}
			busy[k] = g.BusySecondsTotal
			u := 0.0
			if prev, ok := n.prevBusy[k]; ok && !first && window > 0 && g.BusySecondsTotal >= prev {
				u = min(1, (g.BusySecondsTotal-prev)/window)
			}
			st := &next[g.Index]
			st.procs = append(st.procs, procState{pid: a.PID, mem: g.MemoryBytes, util: u})
			st.memUsed += g.MemoryBytes
			st.util = min(1, st.util+u)
		}
	}
	n.prevBusy, n.pods = busy, pods
	faults := n.readFaults()
	for i := range n.gpus {
		old := n.gpus[i]
		st := next[i]
		st.procTS = ts
		st.memUsed = min(st.memUsed, n.devices[i].MemoryInfo.Total)
		st.samples = append(old.samples, gonvml.Sample{TimeStamp: ts, SampleValue: uint32Value(uint32(st.util*100 + 0.5))})
		if len(st.samples) > keepSamples {
			st.samples = st.samples[len(st.samples)-keepSamples:]
		}
		st.lostXid = faults[i]
		if st.lostXid != 0 && old.lostXid == 0 {
			select {
			case n.events <- gonvml.EventData{Device: n.devices[i], EventType: gonvml.EventTypeXidCriticalError, EventData: st.lostXid}:
			default: // nobody listens; the GPU still reports as lost
			}
		}
		n.gpus[i] = st
	}
}

func uint32Value(v uint32) [8]byte {
	var b [8]byte
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return b
}

// readActivity returns the valid activity files of live processes. Bad
// files are skipped: one broken reporter must not blind the node.
func (n *Node) readActivity() []activity.Activity {
	if n.opts.Dir == "" {
		return nil
	}
	entries, err := os.ReadDir(n.opts.Dir)
	if err != nil {
		return nil
	}
	var out []activity.Activity
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(n.opts.Dir, e.Name()))
		if err != nil {
			continue
		}
		a, err := activity.ParseActivity(data, len(n.gpus))
		if err != nil || !processAlive(a.PID) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// readFaults reads <Dir>/fault-gpu<N> files: while one exists, GPU N has
// failed with the XID it contains (default 79, "GPU has fallen off the bus").
func (n *Node) readFaults() map[int]uint64 {
	faults := map[int]uint64{}
	if n.opts.Dir == "" {
		return faults
	}
	matches, _ := filepath.Glob(filepath.Join(n.opts.Dir, "fault-gpu*"))
	for _, m := range matches {
		i, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), "fault-gpu"))
		if err != nil || i < 0 || i >= len(n.gpus) {
			continue
		}
		xid := uint64(79)
		if data, err := os.ReadFile(m); err == nil {
			if v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil && v > 0 {
				xid = v
			}
		}
		faults[i] = xid
	}
	return faults
}

// InjectFault makes GPU i fail with xid until ClearFault; the same as
// writing <Dir>/fault-gpu<i>.
func (n *Node) InjectFault(i int, xid uint64) error {
	if n.opts.Dir == "" {
		return fmt.Errorf("simulated node has no directory for faults")
	}
	return os.WriteFile(filepath.Join(n.opts.Dir, "fault-gpu"+strconv.Itoa(i)), []byte(strconv.FormatUint(xid, 10)), 0o644)
}

// ClearFault ends an injected fault of GPU i.
func (n *Node) ClearFault(i int) error {
	err := os.Remove(filepath.Join(n.opts.Dir, "fault-gpu"+strconv.Itoa(i)))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func processAlive(pid uint32) bool {
	_, err := os.Stat("/proc/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}
