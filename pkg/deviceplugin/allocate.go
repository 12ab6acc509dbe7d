package deviceplugin

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// Environment variables every container with gpufleet devices gets.
const (
	// EnvGPUIndices are the node's indices of the container's GPUs, e.g.
	// "0,3" (the inference server reads them).
	EnvGPUIndices = "GPUFLEET_GPU_INDICES"
	// EnvGPUUUIDs are their UUIDs, comma-separated.
	EnvGPUUUIDs = "GPUFLEET_GPU_UUIDS"
	// EnvGPUMilli is the container's share of each of its GPUs, in milli
	// (1000: whole GPUs).
	EnvGPUMilli = "GPUFLEET_GPU_MILLI"
	// EnvVisibleDevices is the NVIDIA container toolkit's device selection.
	EnvVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
)

// AllocationConfig says how a container is given its GPUs.
type AllocationConfig struct {
	// CDIKind is the CDI kind of the GPUs' devices, e.g. "nvidia.com/gpu"
	// (the NVIDIA container toolkit names each GPU by UUID and by index);
	// each GPU is passed as the CDI device <kind>=<UUID>. Empty: no CDI.
	CDIKind string
	// VisibleDevicesEnv sets NVIDIA_VISIBLE_DEVICES to the GPUs' UUIDs.
	VisibleDevicesEnv bool
	// MPS, for shares: the CUDA MPS client limits of the share.
	MPS MPSConfig
}

// MPSConfig sets CUDA MPS client limits on shares. MPS needs the GPU in
// exclusive-process compute mode and the MPS control daemon running with
// its pipe directory at PipeDir on the host.
type MPSConfig struct {
	Enabled bool
	// PipeDir is the MPS control daemon's pipe directory on the host; it is
	// mounted at the same path in the container.
	PipeDir string
}

func (c AllocationConfig) validate() error {
	var errs []error
	if c.CDIKind != "" {
		vendor, class, ok := strings.Cut(c.CDIKind, "/")
		if !ok || !validCDIName(vendor, true) || !validCDIName(class, false) {
			errs = append(errs, fmt.Errorf("CDI kind %q: want vendor.example/class, e.g. nvidia.com/gpu", c.CDIKind))
		}
	}
	if c.MPS.Enabled && !path.IsAbs(c.MPS.PipeDir) {
		errs = append(errs, fmt.Errorf("MPS pipe directory %q must be an absolute path", c.MPS.PipeDir))
	}
	return errors.Join(errs...)
}

// validCDIName checks a CDI vendor (letters, digits, '.', '-', '_', and a
// dot somewhere) or class (letters, digits, '-', '_') name.
func validCDIName(s string, vendor bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || vendor && r == '.'
		if !ok || (i == 0 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')) {
			return false
		}
	}
	return !vendor || strings.Contains(s, ".")
}

// allocate answers the kubelet's Allocate for one container. It needs no
// pod: device IDs say which GPUs they belong to. It refuses a share that
// spans two GPUs and any GPU that would be given out whole and in shares at
// once (v is the node's allocations without this container).
func (p *Plugin) allocate(resource string, ids []string, v *nodeView) (*pluginapi.ContainerAllocateResponse, error) {
	if len(ids) == 0 {
		return nil, errors.New("no device IDs to allocate")
	}
	gpus, count, err := p.inv.gpusOf(resource, ids)
	if err != nil {
		return nil, err
	}
	share := MilliPerGPU
	if resource == ResourceMilli {
		if len(gpus) != 1 {
			return nil, fmt.Errorf("%d %s spread over GPUs %s: a share never spans two GPUs (the kubelet chose devices without the plugin's preference)", len(ids), ResourceMilli, indexList(gpus))
		}
		share = count[gpus[0].Index]
		if r, ok := v.whole[gpus[0].Index]; ok {
			return nil, fmt.Errorf("GPU %d is given whole to %s: it cannot also be given out in shares", gpus[0].Index, r)
		}
	} else {
		for _, g := range gpus {
			if v.milli[g.Index] > 0 {
				return nil, fmt.Errorf("GPU %d has %d milli given out in shares (%s): it cannot also be given out whole", g.Index, v.milli[g.Index], refs(v.sharers[g.Index]))
			}
		}
	}
	uuids := make([]string, len(gpus))
	for i, g := range gpus {
		uuids[i] = g.UUID
	}
	resp := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{
		EnvGPUIndices: indexList(gpus),
		EnvGPUUUIDs:   strings.Join(uuids, ","),
		EnvGPUMilli:   strconv.Itoa(share),
	}}
	cfg := p.cfg.Allocation
	if cfg.VisibleDevicesEnv {
		resp.Envs[EnvVisibleDevices] = strings.Join(uuids, ",")
	}
	if cfg.CDIKind != "" {
		for _, u := range uuids {
			resp.CdiDevices = append(resp.CdiDevices, &pluginapi.CDIDevice{Name: cfg.CDIKind + "=" + u})
		}
	}
	if cfg.MPS.Enabled && resource == ResourceMilli {
		g := gpus[0]
		// Ordinal 0: the container sees its one GPU only.
		resp.Envs["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = fmt.Sprintf("0=%dM", g.MemoryBytes*uint64(share)/MilliPerGPU>>20)
		resp.Envs["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = strconv.Itoa(max(1, (share+5)/10))
		resp.Envs["CUDA_MPS_PIPE_DIRECTORY"] = cfg.MPS.PipeDir
		resp.Mounts = append(resp.Mounts, &pluginapi.Mount{ContainerPath: cfg.MPS.PipeDir, HostPath: cfg.MPS.PipeDir})
	}
	return resp, nil
}

func indexList(gpus []*GPU) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = strconv.Itoa(g.Index)
	}
	return strings.Join(parts, ",")
}
