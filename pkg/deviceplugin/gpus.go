package deviceplugin

import (
	"errors"
	"fmt"

	"github.com/gpufleet/gpufleet/pkg/nvml"
)

// GPU is one GPU the plugin gives out.
type GPU struct {
	// Index is the GPU's NVML index: the number in gpufleet.io/gpu-indices.
	Index int
	UUID  string
	// MemoryBytes is the GPU's memory; a share's MPS memory limit is its
	// part of it.
	MemoryBytes uint64
	// Links counts the NVLinks to each other GPU of the node, by index.
	Links map[int]int
}

// GPUsFromNVML returns the GPUs of a node as NVML describes them.
func GPUsFromNVML(infos []nvml.DeviceInfo) []GPU {
	gpus := make([]GPU, 0, len(infos))
	for _, info := range infos {
		g := GPU{Index: info.Index, UUID: info.UUID, MemoryBytes: info.MemoryTotalBytes, Links: map[int]int{}}
		for _, l := range info.NVLinks {
			if l.PeerIndex >= 0 && l.PeerIndex != info.Index {
				g.Links[l.PeerIndex]++
			}
		}
		gpus = append(gpus, g)
	}
	return gpus
}

// inventory is the node's GPUs with lookups by index and UUID.
type inventory struct {
	gpus    []GPU
	byUUID  map[string]*GPU
	byIndex map[int]*GPU
}

func newInventory(gpus []GPU) (*inventory, error) {
	if len(gpus) == 0 {
		return nil, fmt.Errorf("no GPUs to advertise")
	}
	inv := &inventory{gpus: gpus, byUUID: map[string]*GPU{}, byIndex: map[int]*GPU{}}
	var errs []error
	for i := range inv.gpus {
		g := &inv.gpus[i]
		if err := checkUUID(g.UUID); err != nil {
			errs = append(errs, fmt.Errorf("GPU %d: %w", g.Index, err))
		}
		if other, dup := inv.byUUID[g.UUID]; dup && g.UUID != "" {
			errs = append(errs, fmt.Errorf("GPUs %d and %d share the UUID %q", other.Index, g.Index, g.UUID))
		}
		if _, dup := inv.byIndex[g.Index]; dup {
			errs = append(errs, fmt.Errorf("GPUs share the index %d", g.Index))
		}
		inv.byUUID[g.UUID] = g
		inv.byIndex[g.Index] = g
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return inv, nil
}

// gpuOf returns the GPU a device ID of resource belongs to.
func (inv *inventory) gpuOf(resource, id string) (*GPU, error) {
	uuid := id
	if resource == ResourceMilli {
		u, _, err := parseMilliID(id)
		if err != nil {
			return nil, err
		}
		uuid = u
	}
	g, ok := inv.byUUID[uuid]
	if !ok {
		return nil, fmt.Errorf("device ID %q names no GPU of this node", id)
	}
	return g, nil
}

// gpusOf returns the distinct GPUs of device IDs, in the order they first
// appear, and how many IDs each has.
func (inv *inventory) gpusOf(resource string, ids []string) ([]*GPU, map[int]int, error) {
	var gpus []*GPU
	count := map[int]int{}
	for _, id := range ids {
		g, err := inv.gpuOf(resource, id)
		if err != nil {
			return nil, nil, err
		}
		if count[g.Index] == 0 {
			gpus = append(gpus, g)
		}
		count[g.Index]++
	}
	return gpus, count, nil
}
