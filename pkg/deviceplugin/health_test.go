package deviceplugin

import (
	"maps"
	"slices"
	"sync"
	"testing"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// healthSource is a Config.Health the test changes.
type healthSource struct {
	mu     sync.Mutex
	health map[int]bool
}

func (s *healthSource) read() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.health)
}

func (s *healthSource) set(h map[int]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = h
}

// unhealthyGPUs returns the GPUs with an unhealthy ID in a device list,
// and whether each GPU's IDs all have one health.
func unhealthyGPUs(resource string, devs []*pluginapi.Device) (bad []int, consistent bool) {
	health := map[int]string{}
	consistent = true
	for _, d := range devs {
		g := gpuIndices(resource, []string{d.GetID()})[0]
		if h, seen := health[g]; seen && h != d.GetHealth() {
			consistent = false
		}
		health[g] = d.GetHealth()
	}
	for g := range 8 {
		if health[g] == pluginapi.Unhealthy {
			bad = append(bad, g)
		}
	}
	return bad, consistent
}

func TestGPUHealthChangesReachTheKubelet(t *testing.T) {
	src := &healthSource{}
	h := start(t, func(c *Config) { c.Health = src.read })

	// waitFor waits until both lists show exactly the unhealthy GPUs want.
	waitFor := func(what string, want ...int) {
		t.Helper()
		for _, res := range []string{ResourceMilli, ResourceWhole} {
			h.kubelet.waitDevices(t, res, what+" in the "+res+" list", func(devs []*pluginapi.Device) bool {
				bad, consistent := unhealthyGPUs(res, devs)
				return consistent && len(devs) == map[string]int{ResourceMilli: 8000, ResourceWhole: 8}[res] && slices.Equal(bad, want)
			})
		}
	}

	src.set(map[int]bool{0: true, 3: false, 5: true})
	waitFor("GPU 3 unhealthy", 3)
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_devices", "resource", ResourceMilli, "health", pluginapi.Unhealthy); got != 1000 {
		t.Errorf("devices{resource=%q,health=Unhealthy} = %v, want 1000", ResourceMilli, got)
	}

	// A GPU the health source does not mention is healthy.
	src.set(map[int]bool{0: true})
	waitFor("GPU 3 healthy again")
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_devices", "resource", ResourceWhole, "health", pluginapi.Healthy); got != 8 {
		t.Errorf("devices{resource=%q,health=Healthy} = %v, want 8", ResourceWhole, got)
	}
}

func TestGPUsUnhealthyAtStartAreListedUnhealthy(t *testing.T) {
	src := &healthSource{health: map[int]bool{6: false, 7: false}}
	h := start(t, func(c *Config) { c.Health = src.read })
	for _, res := range []string{ResourceMilli, ResourceWhole} {
		devs, _ := h.kubelet.devices(res)
		if bad, consistent := unhealthyGPUs(res, devs); !consistent || !slices.Equal(bad, []int{6, 7}) {
			t.Errorf("%s: first list has unhealthy GPUs %v (consistent per GPU: %v), want [6 7]", res, bad, consistent)
		}
	}
}
