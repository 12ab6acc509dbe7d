// Package agent is the gpu-agent: it samples the node's GPUs through
// pkg/nvml, attributes their use to pods, serves Prometheus metrics and
// labels its Node with the GPU inventory.
package agent

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/nvml"
)

// DeviceOwners maps a GPU's device ID (UUID, or index) to the pod it is
// allocated to exclusively: the kubelet PodResources API.
type DeviceOwners interface {
	Lookup(deviceID string) (attribution.PodRef, bool)
}

// ProcessOwners maps a GPU process to its pod: its cgroup on a real node.
type ProcessOwners interface {
	PodOfProcess(pid uint32) (attribution.PodRef, bool)
}

// Snapshot is one sampling of every GPU, with attribution. Scrapes read the
// latest snapshot and never touch NVML.
type Snapshot struct {
	Time   time.Time
	System nvml.SystemInfo
	GPUs   []GPUState
	Pods   []PodUse
	// Took is how long the sampling took.
	Took time.Duration
}

// GPUState is one GPU in a snapshot.
type GPUState struct {
	Info    nvml.DeviceInfo
	Sample  nvml.Sample
	Healthy bool
	// Err is why the GPU did not answer this time, if it did not.
	Err error
}

// PodUse is one pod's use of one GPU.
type PodUse struct {
	Pod             attribution.PodRef
	GPU             int
	UUID            string
	Utilization     float64
	MemoryUsedBytes uint64
}

// Sampler samples the GPUs every interval.
type Sampler struct {
	lib       nvml.Library
	devices   []nvml.Device
	system    nvml.SystemInfo
	systemErr error
	owners    DeviceOwners
	processes ProcessOwners
	interval  time.Duration
	now       func() time.Time

	latest  atomic.Pointer[Snapshot]
	samples atomic.Uint64

	mu       sync.Mutex
	errors   map[int]uint64       // per GPU: failed samplings
	xids     map[xidKey]uint64    // per GPU and XID: events seen
	lastXid  map[string]time.Time // UUID -> when its last XID came
	unattrib map[int]uint64       // per GPU: processes with no known pod, last sampling
}

// xidHold is how long an XID critical error marks a GPU unhealthy even if
// it still answers: some XIDs (ECC errors) leave a GPU answering but unfit.
const xidHold = time.Minute

type xidKey struct {
	gpu int
	xid uint64
}

// SamplerOption configures a Sampler.
type SamplerOption func(*Sampler)

// WithDeviceOwners attributes exclusively allocated GPUs to pods.
func WithDeviceOwners(o DeviceOwners) SamplerOption { return func(s *Sampler) { s.owners = o } }

// WithProcessOwners attributes GPU processes to pods.
func WithProcessOwners(o ProcessOwners) SamplerOption { return func(s *Sampler) { s.processes = o } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) SamplerOption { return func(s *Sampler) { s.now = now } }

// NewSampler samples lib's GPUs every interval.
func NewSampler(lib nvml.Library, interval time.Duration, opts ...SamplerOption) *Sampler {
	s := &Sampler{
		lib: lib, devices: lib.Devices(), interval: interval, now: time.Now,
		errors: map[int]uint64{}, xids: map[xidKey]uint64{}, lastXid: map[string]time.Time{}, unattrib: map[int]uint64{},
	}
	for _, o := range opts {
		o(s)
	}
	s.system, s.systemErr = lib.System()
	return s
}

// Latest returns the latest snapshot, or nil before the first sampling.
func (s *Sampler) Latest() *Snapshot { return s.latest.Load() }

// Run samples until ctx ends, and records XID events as they come.
func (s *Sampler) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if s.systemErr != nil {
		logger.Error(s.systemErr, "Reading driver versions; they are missing from gpufleet_gpu_info")
	}
	events, err := s.lib.Events(ctx)
	if err != nil {
		logger.Error(err, "GPU health events unavailable; failures show only as failed readings")
	} else {
		go s.recordEvents(ctx, events)
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		s.SampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Sampler) recordEvents(ctx context.Context, events <-chan nvml.Event) {
	logger := klog.FromContext(ctx)
	for ev := range events {
		logger.Info("GPU critical error", "uuid", ev.UUID, "xid", ev.Xid)
		s.mu.Lock()
		for _, d := range s.devices {
			if d.Info().UUID == ev.UUID {
				s.xids[xidKey{d.Info().Index, ev.Xid}]++
			}
		}
		s.lastXid[ev.UUID] = s.now()
		s.mu.Unlock()
	}
}

// SampleOnce samples every GPU now and publishes the snapshot.
func (s *Sampler) SampleOnce(ctx context.Context) *Snapshot {
	logger := klog.FromContext(ctx)
	start := s.now()
	snap := &Snapshot{Time: start, System: s.system, GPUs: make([]GPUState, len(s.devices))}
	for i, d := range s.devices {
		sample, err := d.Sample()
		info := d.Info()
		s.mu.Lock()
		xidAt, hadXid := s.lastXid[info.UUID]
		recentXid := hadXid && start.Sub(xidAt) < xidHold
		if err != nil {
			s.errors[info.Index]++
			logger.V(2).Info("GPU did not answer", "gpu", info.Index, "uuid", info.UUID, "err", err)
		}
		s.mu.Unlock()
		st := GPUState{Info: info, Sample: sample, Healthy: err == nil && !recentXid, Err: err}
		snap.GPUs[i] = st
		if err == nil {
			snap.Pods = append(snap.Pods, s.attribute(info, sample)...)
		}
	}
	sort.Slice(snap.Pods, func(i, j int) bool {
		a, b := snap.Pods[i], snap.Pods[j]
		if a.GPU != b.GPU {
			return a.GPU < b.GPU
		}
		if a.Pod.Namespace != b.Pod.Namespace {
			return a.Pod.Namespace < b.Pod.Namespace
		}
		if a.Pod.Name != b.Pod.Name {
			return a.Pod.Name < b.Pod.Name
		}
		return a.Pod.Container < b.Pod.Container
	})
	snap.Took = s.now().Sub(start)
	s.latest.Store(snap)
	s.samples.Add(1)
	return snap
}

// attribute splits one GPU's use among pods. Per process where processes
// resolve to pods (shared GPUs: fractional pods, time-slicing); otherwise
// the whole GPU goes to the pod the kubelet allocated it to.
func (s *Sampler) attribute(info nvml.DeviceInfo, sample nvml.Sample) []PodUse {
	byPod := map[attribution.PodRef]*PodUse{}
	var order []attribution.PodRef
	unknown := uint64(0)
	if s.processes != nil {
		for _, p := range sample.Processes {
			ref, ok := s.processes.PodOfProcess(p.PID)
			if !ok {
				unknown++
				continue
			}
			// One series per container, whatever else identifies it.
			ref = attribution.PodRef{Namespace: ref.Namespace, Name: ref.Name, Container: ref.Container}
			u := byPod[ref]
			if u == nil {
				u = &PodUse{Pod: ref, GPU: info.Index, UUID: info.UUID}
				byPod[ref] = u
				order = append(order, ref)
			}
			u.Utilization = min(1, u.Utilization+p.Utilization)
			u.MemoryUsedBytes += p.MemoryUsedBytes
		}
	} else {
		unknown = uint64(len(sample.Processes))
	}
	s.mu.Lock()
	s.unattrib[info.Index] = unknown
	s.mu.Unlock()
	if len(order) == 0 && s.owners != nil {
		ref, ok := s.owners.Lookup(info.UUID)
		if !ok {
			ref, ok = s.owners.Lookup(itoa(info.Index))
		}
		if ok {
			return []PodUse{{Pod: ref, GPU: info.Index, UUID: info.UUID, Utilization: sample.Utilization, MemoryUsedBytes: sample.MemoryUsedBytes}}
		}
	}
	out := make([]PodUse, 0, len(order))
	for _, ref := range order {
		out = append(out, *byPod[ref])
	}
	return out
}

// counters returns copies of the cumulative counters for the collector.
func (s *Sampler) counters() (errs map[int]uint64, xids map[xidKey]uint64, unattrib map[int]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs = make(map[int]uint64, len(s.errors))
	for k, v := range s.errors {
		errs[k] = v
	}
	xids = make(map[xidKey]uint64, len(s.xids))
	for k, v := range s.xids {
		xids[k] = v
	}
	unattrib = make(map[int]uint64, len(s.unattrib))
	for k, v := range s.unattrib {
		unattrib[k] = v
	}
	return errs, xids, unattrib
}
