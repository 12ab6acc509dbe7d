package deviceplugin

import (
	"context"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// healthState is each GPU's last read health; ListAndWatch streams wait on
// its changes.
type healthState struct {
	inv  *inventory
	read func() map[int]bool

	mu      sync.Mutex
	healthy map[int]bool
	changed chan struct{} // closed and replaced on every change
}

func newHealthState(inv *inventory, read func() map[int]bool) *healthState {
	h := &healthState{inv: inv, read: read, healthy: map[int]bool{}, changed: make(chan struct{})}
	for _, g := range inv.gpus {
		h.healthy[g.Index] = true
	}
	h.poll(context.Background())
	return h
}

// poll reads the health once and reports whether it changed.
func (h *healthState) poll(ctx context.Context) bool {
	if h.read == nil {
		return false
	}
	got := h.read()
	next := make(map[int]bool, len(h.inv.gpus))
	for _, g := range h.inv.gpus {
		ok, known := got[g.Index]
		next[g.Index] = !known || ok
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if maps.Equal(next, h.healthy) {
		return false
	}
	for i, ok := range next {
		if ok != h.healthy[i] {
			klog.FromContext(ctx).Info("GPU health changed; telling the kubelet", "gpu", i, "healthy", ok)
		}
	}
	h.healthy = next
	close(h.changed)
	h.changed = make(chan struct{})
	return true
}

// run polls every interval until ctx ends.
func (h *healthState) run(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) { h.poll(ctx) }, interval)
}

// snapshot returns the current health and a channel closed at the next
// change.
func (h *healthState) snapshot() (map[int]bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.healthy), h.changed
}

// devices lists resource's device IDs with their health.
func (p *Plugin) devices(resource string, healthy map[int]bool) []*pluginapi.Device {
	var out []*pluginapi.Device
	bad := 0
	for _, g := range p.inv.gpus {
		health := pluginapi.Healthy
		if !healthy[g.Index] {
			health = pluginapi.Unhealthy
		}
		if resource == ResourceWhole {
			out = append(out, &pluginapi.Device{ID: wholeID(g.UUID), Health: health})
			if health == pluginapi.Unhealthy {
				bad++
			}
			continue
		}
		for k := range MilliPerGPU {
			out = append(out, &pluginapi.Device{ID: milliID(g.UUID, k), Health: health})
		}
		if health == pluginapi.Unhealthy {
			bad += MilliPerGPU
		}
	}
	p.metrics.devices.WithLabelValues(resource, pluginapi.Healthy).Set(float64(len(out) - bad))
	p.metrics.devices.WithLabelValues(resource, pluginapi.Unhealthy).Set(float64(bad))
	return out
}
