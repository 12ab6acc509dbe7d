package deviceplugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// available returns the healthy IDs of resource the kubelet has not given
// out.
func (k *fakeKubelet) available(resource string) map[string]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]bool{}
	if ep := k.endpoints[resource]; ep != nil {
		for _, d := range ep.devices {
			if d.GetHealth() == pluginapi.Healthy && !k.inUse[resource][d.GetID()] {
				out[d.GetID()] = true
			}
		}
	}
	return out
}

// take records ids of resource as given out; give returns them.
func (k *fakeKubelet) take(resource string, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inUse[resource] == nil {
		k.inUse[resource] = map[string]bool{}
	}
	for _, id := range ids {
		k.inUse[resource][id] = true
	}
}

func (k *fakeKubelet) give(resource string, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		delete(k.inUse[resource], id)
	}
}

// preferred calls GetPreferredAllocation for one container.
func (k *fakeKubelet) preferred(t *testing.T, resource string, available, mustInclude []string, size int) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	resp, err := k.client(t, resource).GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{
		ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
			AvailableDeviceIDs: available, MustIncludeDeviceIDs: mustInclude, AllocationSize: int32(size),
		}},
	})
	if err != nil {
		return nil, err
	}
	if n := len(resp.GetContainerResponses()); n != 1 {
		t.Fatalf("GetPreferredAllocation answered %d containers for 1", n)
	}
	return resp.GetContainerResponses()[0].GetDeviceIDs(), nil
}

// allocate calls Allocate with one container request per ID list.
func (k *fakeKubelet) allocate(t *testing.T, resource string, ids ...[]string) ([]*pluginapi.ContainerAllocateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	req := &pluginapi.AllocateRequest{}
	for _, c := range ids {
		req.ContainerRequests = append(req.ContainerRequests, &pluginapi.ContainerAllocateRequest{DevicesIds: c})
	}
	resp, err := k.client(t, resource).Allocate(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp.GetContainerResponses()) != len(ids) {
		t.Fatalf("Allocate answered %d containers for %d", len(resp.GetContainerResponses()), len(ids))
	}
	return resp.GetContainerResponses(), nil
}

// preStart calls PreStartContainer for a container holding ids.
func (k *fakeKubelet) preStart(t *testing.T, resource string, ids []string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	_, err := k.client(t, resource).PreStartContainer(ctx, &pluginapi.PreStartContainerRequest{DevicesIds: ids})
	return err
}

// containerAlloc is what the fake kubelet did for one container.
type containerAlloc struct {
	resource string
	// asked says whether the kubelet called GetPreferredAllocation (not
	// when devices reused from init containers cover the request).
	asked       bool
	mustInclude []string
	preferred   []string
	// devices are the IDs the container got; resp is Allocate's answer.
	devices []string
	resp    *pluginapi.ContainerAllocateResponse
}

// allocateContainer gives a container size IDs of resource as the kubelet's
// device manager does (devicesToAllocate): reusable IDs of the pod's init
// containers first; then it asks the plugin's preference among the
// available IDs, takes the preferred ones and fills up in the kubelet's
// arbitrary (map) order; then it records the IDs as given out and calls
// Allocate.
func (k *fakeKubelet) allocateContainer(t *testing.T, resource string, size int, reusable map[string]bool) (*containerAlloc, error) {
	t.Helper()
	a := &containerAlloc{resource: resource}
	var devices []string
	for id := range reusable {
		if len(devices) == size {
			break
		}
		devices = append(devices, id)
	}
	var taken []string
	if len(devices) < size {
		avail := k.available(resource)
		if len(avail) < size-len(devices) {
			return nil, fmt.Errorf("requested number of devices unavailable for %s. Requested: %d, Available: %d", resource, size-len(devices), len(avail))
		}
		offer := append(slices.Collect(maps.Keys(avail)), devices...)
		a.asked, a.mustInclude = true, slices.Clone(devices)
		pref, err := k.preferred(t, resource, offer, a.mustInclude, size)
		if err != nil {
			return nil, err
		}
		a.preferred = pref
		for _, id := range pref {
			if len(devices) < size && avail[id] && !slices.Contains(devices, id) {
				devices, taken = append(devices, id), append(taken, id)
			}
		}
		for id := range avail {
			if len(devices) == size {
				break
			}
			if !slices.Contains(devices, id) {
				devices, taken = append(devices, id), append(taken, id)
			}
		}
	}
	k.take(resource, taken)
	resps, err := k.allocate(t, resource, devices)
	if err != nil {
		k.give(resource, taken)
		return nil, err
	}
	a.devices, a.resp = devices, resps[0]
	return a, nil
}
