package nvml

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
)

// New initialises lib and reads every device's static facts. lib is the real
// library (gonvml.New()) or a simulated one. Init failing because the shared
// library is missing returns an error wrapping ErrLibraryNotFound.
func New(lib gonvml.Interface) (Library, error) {
	if ret := lib.Init(); ret != gonvml.SUCCESS {
		if ret == gonvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, fmt.Errorf("%w: %v", ErrLibraryNotFound, ret)
		}
		return nil, fmt.Errorf("initialising NVML: %v", ret)
	}
	l := &library{lib: lib}
	n, ret := lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		_ = lib.Shutdown()
		return nil, fmt.Errorf("counting GPUs: %v", ret)
	}
	for i := range n {
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			_ = lib.Shutdown()
			return nil, fmt.Errorf("opening GPU %d: %v", i, ret)
		}
		// A GPU that does not answer keeps its place: Sample retries it and
		// reports its error, while the other GPUs keep reporting.
		d := &device{h: h}
		d.infoErr = d.readInfo(i)
		l.devices = append(l.devices, d)
	}
	l.resolvePeers()
	return l, nil
}

type library struct {
	lib     gonvml.Interface
	devices []*device
}

func (l *library) System() (SystemInfo, error) {
	drv, ret := l.lib.SystemGetDriverVersion()
	if ret != gonvml.SUCCESS {
		return SystemInfo{}, fmt.Errorf("reading driver version: %v", ret)
	}
	cuda, ret := l.lib.SystemGetCudaDriverVersion()
	if ret != gonvml.SUCCESS {
		return SystemInfo{}, fmt.Errorf("reading CUDA driver version: %v", ret)
	}
	// NVML encodes CUDA 12.2 as 12020.
	return SystemInfo{DriverVersion: drv, CUDAVersion: fmt.Sprintf("%d.%d", cuda/1000, cuda%1000/10)}, nil
}

func (l *library) Devices() []Device {
	out := make([]Device, len(l.devices))
	for i, d := range l.devices {
		out[i] = d
	}
	return out
}

func (l *library) Shutdown() error {
	if ret := l.lib.Shutdown(); ret != gonvml.SUCCESS {
		return fmt.Errorf("shutting NVML down: %v", ret)
	}
	return nil
}

// resolvePeers turns each NVLink's remote PCI bus id into a GPU index.
func (l *library) resolvePeers() {
	byBus := map[string]int{}
	for _, d := range l.devices {
		byBus[d.info.PCIBusID] = d.info.Index
	}
	for _, d := range l.devices {
		for i, link := range d.info.NVLinks {
			idx, ok := byBus[link.PeerBusID]
			if !ok {
				idx = -1
			}
			d.info.NVLinks[i].PeerIndex = idx
		}
	}
}

// Events registers every device that supports it for XID critical errors
// and streams them until ctx ends.
func (l *library) Events(ctx context.Context) (<-chan Event, error) {
	out := make(chan Event, 16)
	set, ret := l.lib.EventSetCreate()
	if ret == gonvml.ERROR_NOT_SUPPORTED {
		close(out)
		return out, nil
	}
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("creating NVML event set: %v", ret)
	}
	registered := 0
	for _, d := range l.devices {
		supported, ret := d.h.GetSupportedEventTypes()
		if ret != gonvml.SUCCESS || supported&gonvml.EventTypeXidCriticalError == 0 {
			continue
		}
		if ret := d.h.RegisterEvents(gonvml.EventTypeXidCriticalError, set); ret == gonvml.SUCCESS {
			registered++
		}
	}
	if registered == 0 {
		_ = set.Free()
		close(out)
		return out, nil
	}
	go func() {
		defer close(out)
		defer func() { _ = set.Free() }()
		for ctx.Err() == nil {
			data, ret := set.Wait(500) // ms; lets us notice ctx ending
			switch ret {
			case gonvml.SUCCESS:
			case gonvml.ERROR_TIMEOUT:
				continue
			default:
				return
			}
			if data.EventType&gonvml.EventTypeXidCriticalError == 0 || data.Device == nil {
				continue
			}
			uuid, _ := data.Device.GetUUID()
			select {
			case out <- Event{UUID: uuid, Xid: data.EventData}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// device adapts one go-nvml device. Sample keeps the timestamps of the last
// utilization samples it read, so each call averages over the time since
// the previous one.
type device struct {
	h    gonvml.Device
	info DeviceInfo

	mu           sync.Mutex
	infoErr      error // reading static facts failed; retried by Sample
	lastGPUTS    uint64
	lastProcTS   uint64
	noGPUSamples bool
}

func (d *device) Info() DeviceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

func (d *device) readInfo(index int) error {
	var ret gonvml.Return
	d.info = DeviceInfo{Index: index}
	if d.info.Name, ret = d.h.GetName(); ret != gonvml.SUCCESS {
		return fmt.Errorf("name: %w", ret)
	}
	if d.info.UUID, ret = d.h.GetUUID(); ret != gonvml.SUCCESS {
		return fmt.Errorf("UUID: %w", ret)
	}
	pci, ret := d.h.GetPciInfo()
	if ret != gonvml.SUCCESS {
		return fmt.Errorf("PCI info: %w", ret)
	}
	d.info.PCIBusID = NormalizeBusID(busID(pci))
	if arch, ret := d.h.GetArchitecture(); ret == gonvml.SUCCESS {
		d.info.Architecture = archName(arch)
	}
	if major, minor, ret := d.h.GetCudaComputeCapability(); ret == gonvml.SUCCESS {
		d.info.ComputeCapacity = fmt.Sprintf("%d.%d", major, minor)
	}
	mem, ret := d.h.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		return fmt.Errorf("memory: %w", ret)
	}
	d.info.MemoryTotalBytes = mem.Total
	for link := range gonvml.NVLINK_MAX_LINKS {
		state, ret := d.h.GetNvLinkState(link)
		if ret == gonvml.ERROR_NOT_SUPPORTED || ret == gonvml.ERROR_INVALID_ARGUMENT {
			break // no (more) links
		}
		if ret != gonvml.SUCCESS || state != gonvml.FEATURE_ENABLED {
			continue
		}
		remote, ret := d.h.GetNvLinkRemotePciInfo(link)
		if ret != gonvml.SUCCESS {
			continue
		}
		d.info.NVLinks = append(d.info.NVLinks, NVLink{Link: link, PeerBusID: NormalizeBusID(busID(remote)), PeerIndex: -1})
	}
	return nil
}

func (d *device) Sample() (Sample, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.infoErr != nil {
		links := d.info.NVLinks
		if d.infoErr = d.readInfo(d.info.Index); d.infoErr != nil {
			return Sample{}, fmt.Errorf("GPU %d: %w", d.info.Index, d.infoErr)
		}
		d.info.NVLinks = links // peers are resolved once, at New
	}
	s := Sample{Utilization: NaN, PowerWatts: NaN, TemperatureC: NaN, SMClockHz: NaN, MemoryTotalBytes: d.info.MemoryTotalBytes}
	mem, ret := d.h.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		// Memory is supported by every GPU: failing here means the GPU did not answer.
		return Sample{}, fmt.Errorf("GPU %d memory: %w", d.info.Index, ret)
	}
	s.MemoryUsedBytes, s.MemoryTotalBytes = mem.Used, mem.Total
	util, err := d.utilization()
	if err != nil {
		return Sample{}, err
	}
	s.Utilization = util
	if mw, ret := d.h.GetPowerUsage(); ret == gonvml.SUCCESS {
		s.PowerWatts = float64(mw) / 1000
	} else if fatal(ret) {
		return Sample{}, fmt.Errorf("GPU %d power: %w", d.info.Index, ret)
	}
	if t, ret := d.h.GetTemperature(gonvml.TEMPERATURE_GPU); ret == gonvml.SUCCESS {
		s.TemperatureC = float64(t)
	} else if fatal(ret) {
		return Sample{}, fmt.Errorf("GPU %d temperature: %w", d.info.Index, ret)
	}
	if mhz, ret := d.h.GetClockInfo(gonvml.CLOCK_SM); ret == gonvml.SUCCESS {
		s.SMClockHz = float64(mhz) * 1e6
	} else if fatal(ret) {
		return Sample{}, fmt.Errorf("GPU %d SM clock: %w", d.info.Index, ret)
	}
	procs, err := d.processes()
	if err != nil {
		return Sample{}, err
	}
	s.Processes = procs
	return s, nil
}

// utilization averages the GPU utilization samples the driver recorded since
// the previous call; without samples it falls back to the driver's own
// window (GetUtilizationRates).
func (d *device) utilization() (float64, error) {
	if !d.noGPUSamples {
		vt, samples, ret := d.h.GetSamples(gonvml.GPU_UTILIZATION_SAMPLES, d.lastGPUTS)
		switch {
		case ret == gonvml.SUCCESS && len(samples) > 0:
			sum := 0.0
			for _, s := range samples {
				sum += sampleValue(vt, s.SampleValue)
				d.lastGPUTS = max(d.lastGPUTS, s.TimeStamp)
			}
			return math.Min(1, sum/float64(len(samples))/100), nil
		case ret == gonvml.ERROR_NOT_SUPPORTED:
			d.noGPUSamples = true
		case fatal(ret):
			return 0, fmt.Errorf("GPU %d utilization samples: %w", d.info.Index, ret)
		}
		// SUCCESS without samples or ERROR_NOT_FOUND: nothing new; use the rate.
	}
	u, ret := d.h.GetUtilizationRates()
	if ret != gonvml.SUCCESS {
		if fatal(ret) {
			return 0, fmt.Errorf("GPU %d utilization: %w", d.info.Index, ret)
		}
		return NaN, nil
	}
	return float64(u.Gpu) / 100, nil
}

// processes lists compute processes with their memory and, where the device
// reports it, their SM utilization since the previous call.
func (d *device) processes() ([]Process, error) {
	infos, ret := d.h.GetComputeRunningProcesses()
	if ret != gonvml.SUCCESS {
		if fatal(ret) {
			return nil, fmt.Errorf("GPU %d processes: %w", d.info.Index, ret)
		}
		return nil, nil
	}
	if len(infos) == 0 {
		return nil, nil
	}
	utils := map[uint32]float64{}
	samples, ret := d.h.GetProcessUtilization(d.lastProcTS)
	if ret == gonvml.SUCCESS {
		counts := map[uint32]int{}
		for _, s := range samples {
			utils[s.Pid] += float64(s.SmUtil) / 100
			counts[s.Pid]++
			d.lastProcTS = max(d.lastProcTS, s.TimeStamp)
		}
		for pid, n := range counts {
			utils[pid] = math.Min(1, utils[pid]/float64(n))
		}
	} else if fatal(ret) {
		return nil, fmt.Errorf("GPU %d process utilization: %w", d.info.Index, ret)
	}
	out := make([]Process, 0, len(infos))
	for _, p := range infos {
		u, ok := utils[p.Pid]
		switch {
		case ok:
		case ret == gonvml.SUCCESS || ret == gonvml.ERROR_NOT_FOUND:
			u = 0 // reported, but no samples for this process: it ran no kernel
		default:
			u = NaN
		}
		out = append(out, Process{PID: p.Pid, MemoryUsedBytes: p.UsedGpuMemory, Utilization: u})
	}
	return out, nil
}

// fatal says whether an NVML return means the GPU itself failed, as
// opposed to a reading it does not support or has no data for.
func fatal(ret gonvml.Return) bool {
	switch ret {
	case gonvml.SUCCESS, gonvml.ERROR_NOT_SUPPORTED, gonvml.ERROR_NOT_FOUND, gonvml.ERROR_NO_PERMISSION:
		return false
	}
	return true
}

// IsGPULost says whether err means the GPU fell off the bus or needs a reset.
func IsGPULost(err error) bool {
	var ret gonvml.Return
	return errors.As(err, &ret) && (ret == gonvml.ERROR_GPU_IS_LOST || ret == gonvml.ERROR_RESET_REQUIRED)
}

func sampleValue(vt gonvml.ValueType, v [8]byte) float64 {
	switch vt {
	case gonvml.VALUE_TYPE_DOUBLE:
		return math.Float64frombits(binary.LittleEndian.Uint64(v[:]))
	case gonvml.VALUE_TYPE_UNSIGNED_LONG, gonvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return float64(binary.LittleEndian.Uint64(v[:]))
	case gonvml.VALUE_TYPE_SIGNED_LONG_LONG:
		return float64(int64(binary.LittleEndian.Uint64(v[:])))
	default: // VALUE_TYPE_UNSIGNED_INT, what GPU utilization samples use
		return float64(binary.LittleEndian.Uint32(v[:4]))
	}
}

func busID(p gonvml.PciInfo) string {
	var b strings.Builder
	for _, c := range p.BusId {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// NormalizeBusID writes a PCI bus id as domain:bus:device.function with a
// 4-digit domain in lower case ("00000000:06:00.0" -> "0000:06:00.0"), so
// ids from different NVML calls compare equal.
func NormalizeBusID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	domain, rest, ok := strings.Cut(id, ":")
	if !ok || strings.Count(rest, ":") != 1 {
		return id
	}
	domain = strings.TrimLeft(domain, "0")
	if len(domain) < 4 {
		domain = strings.Repeat("0", 4-len(domain)) + domain
	}
	return domain + ":" + rest
}

func archName(a gonvml.DeviceArchitecture) string {
	switch a {
	case gonvml.DEVICE_ARCH_KEPLER:
		return "kepler"
	case gonvml.DEVICE_ARCH_MAXWELL:
		return "maxwell"
	case gonvml.DEVICE_ARCH_PASCAL:
		return "pascal"
	case gonvml.DEVICE_ARCH_VOLTA:
		return "volta"
	case gonvml.DEVICE_ARCH_TURING:
		return "turing"
	case gonvml.DEVICE_ARCH_AMPERE:
		return "ampere"
	case gonvml.DEVICE_ARCH_ADA:
		return "ada"
	case gonvml.DEVICE_ARCH_HOPPER:
		return "hopper"
	case gonvml.DEVICE_ARCH_BLACKWELL:
		return "blackwell"
	}
	return "unknown"
}
