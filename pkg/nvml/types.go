// Package nvml is the narrow view of NVIDIA's management library that
// gpufleet uses: the GPUs of one node, what each is doing, who runs on it,
// and when one fails. Business logic depends on Library and Device only;
// New adapts any github.com/NVIDIA/go-nvml Interface to them: the real
// library (libnvidia-ml.so.1, loaded at run time) or the simulated node of
// package sim, so the same adapter code runs in tests and on GPUs.
package nvml

import (
	"context"
	"errors"
	"math"
)

// Library is a node's GPUs.
type Library interface {
	// System returns driver facts.
	System() (SystemInfo, error)
	// Devices returns every GPU, in NVML index order. The list is fixed
	// after Init; a GPU that fails keeps its place and returns errors.
	Devices() []Device
	// Events streams critical events (XID errors) until ctx ends. A
	// library without event support returns a closed channel and nil.
	Events(ctx context.Context) (<-chan Event, error)
	// Shutdown releases the library.
	Shutdown() error
}

// SystemInfo are facts about the node's driver.
type SystemInfo struct {
	DriverVersion string // e.g. "535.104.05"
	CUDAVersion   string // the highest CUDA version the driver supports, e.g. "12.2"
}

// Device is one GPU.
type Device interface {
	// Info returns the GPU's static facts, read once at Init.
	Info() DeviceInfo
	// Sample reads the GPU's current state. Utilization is averaged over the
	// time since the previous Sample where the device keeps samples. An
	// error means the GPU did not answer (e.g. it fell off the bus).
	Sample() (Sample, error)
}

// DeviceInfo are a GPU's static facts.
type DeviceInfo struct {
	Index            int
	Name             string // NVML product name, e.g. "Tesla V100-SXM2-16GB"
	UUID             string // e.g. "GPU-6f8a...": the device ID of the NVIDIA device plugin
	PCIBusID         string // normalised, e.g. "0000:06:00.0"
	Architecture     string // lower case, e.g. "volta"
	ComputeCapacity  string // e.g. "7.0"
	MemoryTotalBytes uint64
	// NVLinks are the GPU's active NVLinks; PeerIndex is -1 for a link to
	// something other than a GPU of this node (an NVSwitch, a CPU).
	NVLinks []NVLink
}

// NVLink is one active NVLink of a GPU.
type NVLink struct {
	Link      int
	PeerBusID string
	PeerIndex int
}

// Sample is a GPU's state at one time. A value the device does not support
// is NaN (floats) and is not exported.
type Sample struct {
	// Utilization is the fraction of time (0..1) a kernel ran.
	Utilization      float64
	MemoryUsedBytes  uint64
	MemoryTotalBytes uint64
	PowerWatts       float64
	TemperatureC     float64
	SMClockHz        float64
	Processes        []Process
}

// Process is one compute process on a GPU.
type Process struct {
	PID             uint32
	MemoryUsedBytes uint64
	// Utilization is the process's share of time (0..1) running kernels
	// over the sampling window; NaN if the device does not report it.
	Utilization float64
}

// Event is a critical event on a GPU.
type Event struct {
	UUID string
	// Xid is the XID error code (e.g. 79: the GPU has fallen off the bus).
	Xid uint64
}

// ErrLibraryNotFound is returned when libnvidia-ml.so.1 cannot be loaded.
var ErrLibraryNotFound = errors.New("NVML library (libnvidia-ml.so.1) not found")

// NaN is the value of an unsupported reading.
var NaN = math.NaN()
