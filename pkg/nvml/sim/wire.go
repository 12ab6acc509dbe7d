package sim

import (
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// nvlinksPerGPU is how many NVLinks a V100 has; links past it are invalid.
const nvlinksPerGPU = 6

// state observes and returns GPU i's state, or ERROR_GPU_IS_LOST.
func (n *Node) state(i int) (gpuState, gonvml.Return) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.observe()
	st := n.gpus[i]
	if st.lostXid != 0 {
		return gpuState{}, gonvml.ERROR_GPU_IS_LOST
	}
	return st, gonvml.SUCCESS
}

// wireDevice replaces the mock device's dynamic readings with ones driven
// by the activity of GPU i.
func (n *Node) wireDevice(i int, d *server.Device) {
	busID := d.PciBusID
	d.GetPciInfoFunc = func() (gonvml.PciInfo, gonvml.Return) {
		return pciInfo(busID, d.Config.PciDeviceId), gonvml.SUCCESS
	}
	d.GetMemoryInfoFunc = func() (gonvml.Memory, gonvml.Return) {
		st, ret := n.state(i)
		if ret != gonvml.SUCCESS {
			return gonvml.Memory{}, ret
		}
		total := d.MemoryInfo.Total
		return gonvml.Memory{Total: total, Used: st.memUsed, Free: total - st.memUsed}, gonvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) {
		st, ret := n.state(i)
		if ret != gonvml.SUCCESS {
			return gonvml.Utilization{}, ret
		}
		memUtil := uint32(0)
		if st.util > 0 {
			memUtil = uint32(st.util * 60) // memory-bound share of a busy kernel
		}
		return gonvml.Utilization{Gpu: uint32(st.util*100 + 0.5), Memory: memUtil}, gonvml.SUCCESS
	}
	d.GetSamplesFunc = func(t gonvml.SamplingType, last uint64) (gonvml.ValueType, []gonvml.Sample, gonvml.Return) {
		if t != gonvml.GPU_UTILIZATION_SAMPLES {
			return 0, nil, gonvml.ERROR_NOT_SUPPORTED
		}
		st, ret := n.state(i)
		if ret != gonvml.SUCCESS {
			return 0, nil, ret
		}
		var out []gonvml.Sample
		for _, s := range st.samples {
			if s.TimeStamp > last {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return gonvml.VALUE_TYPE_UNSIGNED_INT, nil, gonvml.ERROR_NOT_FOUND
		}
		return gonvml.VALUE_TYPE_UNSIGNED_INT, out, gonvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, gonvml.Return) {
		st, ret := n.state(i)
		return uint32((idleWatts + st.util*(busyWatts-idleWatts)) * 1000), ret
	}
	d.GetTemperatureFunc = func(gonvml.TemperatureSensors) (uint32, gonvml.Return) {
		st, ret := n.state(i)
		return uint32(idleTempC + st.util*(busyTempC-idleTempC)), ret
	}
	d.GetClockInfoFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) {
		if c != gonvml.CLOCK_SM {
			return 0, gonvml.ERROR_NOT_SUPPORTED
		}
		st, ret := n.state(i)
		if st.util > 0 {
			return busySMMHz, ret
		}
		return idleSMMHz, ret
	}
	d.GetComputeRunningProcessesFunc = func() ([]gonvml.ProcessInfo, gonvml.Return) {
		st, ret := n.state(i)
		if ret != gonvml.SUCCESS {
			return nil, ret
		}
		out := make([]gonvml.ProcessInfo, 0, len(st.procs))
		for _, p := range st.procs {
			out = append(out, gonvml.ProcessInfo{Pid: p.pid, UsedGpuMemory: p.mem})
		}
		return out, gonvml.SUCCESS
	}
	d.GetProcessUtilizationFunc = func(last uint64) ([]gonvml.ProcessUtilizationSample, gonvml.Return) {
		st, ret := n.state(i)
		if ret != gonvml.SUCCESS {
			return nil, ret
		}
		if st.procTS <= last || len(st.procs) == 0 {
			return nil, gonvml.ERROR_NOT_FOUND
		}
		out := make([]gonvml.ProcessUtilizationSample, 0, len(st.procs))
		for _, p := range st.procs {
			out = append(out, gonvml.ProcessUtilizationSample{Pid: p.pid, TimeStamp: st.procTS, SmUtil: uint32(p.util*100 + 0.5)})
		}
		return out, gonvml.SUCCESS
	}
	d.GetNvLinkStateFunc = func(link int) (gonvml.EnableState, gonvml.Return) {
		if len(n.links[i]) == 0 {
			return 0, gonvml.ERROR_NOT_SUPPORTED
		}
		if link < 0 || link >= nvlinksPerGPU {
			return 0, gonvml.ERROR_INVALID_ARGUMENT
		}
		if link >= len(n.links[i]) {
			return gonvml.FEATURE_DISABLED, gonvml.SUCCESS
		}
		return gonvml.FEATURE_ENABLED, gonvml.SUCCESS
	}
	d.GetNvLinkRemotePciInfoFunc = func(link int) (gonvml.PciInfo, gonvml.Return) {
		if link < 0 || link >= len(n.links[i]) {
			return gonvml.PciInfo{}, gonvml.ERROR_INVALID_ARGUMENT
		}
		peer := n.devices[n.links[i][link]]
		return pciInfo(peer.PciBusID, peer.Config.PciDeviceId), gonvml.SUCCESS
	}
	d.GetSupportedEventTypesFunc = func() (uint64, gonvml.Return) {
		return gonvml.EventTypeXidCriticalError, gonvml.SUCCESS
	}
	d.RegisterEventsFunc = func(uint64, gonvml.EventSet) gonvml.Return { return gonvml.SUCCESS }
}

// wireServer adds XID events to the mock server.
func (n *Node) wireServer() {
	n.server.EventSetCreateFunc = func() (gonvml.EventSet, gonvml.Return) {
		set := &mock.EventSet{}
		set.WaitFunc = func(timeoutMs uint32) (gonvml.EventData, gonvml.Return) {
			timer := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
			defer timer.Stop()
			// Faults are noticed when the node is observed; look now too.
			n.mu.Lock()
			n.observe()
			n.mu.Unlock()
			select {
			case ev := <-n.events:
				return ev, gonvml.SUCCESS
			case <-timer.C:
				return gonvml.EventData{}, gonvml.ERROR_TIMEOUT
			}
		}
		set.FreeFunc = func() gonvml.Return { return gonvml.SUCCESS }
		return set, gonvml.SUCCESS
	}
}

func pciInfo(busID string, deviceID uint32) gonvml.PciInfo {
	p := gonvml.PciInfo{PciDeviceId: deviceID}
	// NVML writes the 8-digit-domain form here.
	long := "0000" + busID
	for j := 0; j < len(long) && j < len(p.BusId)-1; j++ {
		p.BusId[j] = int8(long[j])
	}
	return p
}
