package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Mismatch policies: what PreStartContainer does when a container's devices
// are not its pod's annotated GPUs, and GetPreferredAllocation when the
// annotated GPUs cannot be had.
const (
	// OnMismatchRefuse fails the call: the kubelet does not start the
	// container (or does not admit the pod), and says why in its events.
	OnMismatchRefuse = "refuse"
	// OnMismatchWarn records the mismatch and lets the container start.
	OnMismatchWarn = "warn"
)

// PodResourcesLister reads the kubelet's pod-resources API
// (attribution.PodResourcesClient): List, its active pods with their
// devices; Get, one pod's (an error wrapping attribution.ErrPodNotListed
// when the kubelet does not have it).
type PodResourcesLister interface {
	List(ctx context.Context) ([]*podresourcesv1.PodResources, error)
	Get(ctx context.Context, namespace, name string) (*podresourcesv1.PodResources, error)
}

// EventSink posts Events (agent.KubeClient).
type EventSink interface {
	CreateEvent(ctx context.Context, ev *corev1.Event) error
}

// Config configures the device plugin.
type Config struct {
	// NodeName is the node's name, for Events.
	NodeName string
	// GPUs are the node's GPUs.
	GPUs []GPU
	// Milli advertises gpufleet.io/gpu-milli; Whole advertises
	// nvidia.com/gpu (NVIDIA's device plugin must then be off on the node).
	Milli, Whole bool
	// Dir is the kubelet's device-plugin directory: its registration
	// socket is kubelet.sock there, and the plugin's sockets go there.
	Dir string
	// PodResources and Pods find the pod being admitted; Events (optional)
	// reports mismatches on it.
	PodResources PodResourcesLister
	Pods         PodLookup
	Events       EventSink
	// Health returns each GPU's health by index (a GPU missing from the
	// map is healthy); nil: always healthy. HealthInterval is how often it
	// is read.
	Health         func() map[int]bool
	HealthInterval time.Duration
	// OnMismatch is OnMismatchRefuse (default) or OnMismatchWarn.
	OnMismatch string
	Allocation AllocationConfig
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Plugin is the device plugin: one gRPC server per advertised resource,
// registered with the kubelet and re-registered when the kubelet restarts.
type Plugin struct {
	cfg     Config
	inv     *inventory
	metrics *metrics

	health *healthState

	mu      sync.Mutex
	steered map[steerKey]steered
	// preferredFor remembers which pod each steered device set was for, so
	// PreStartContainer can name the pod of an init container (the
	// pod-resources API leaves those out).
	preferredFor map[string]steeredPod
	// lastSteer is the node view of the last GetPreferredAllocation, for
	// the Allocate of the same container that follows it.
	lastSteer *steerView
}

// steerView is a node view read by GetPreferredAllocation with the device
// IDs it preferred.
type steerView struct {
	resource string
	ids      map[string]bool
	view     *nodeView
	at       time.Time
}

// steerViewTTL bounds how old a GetPreferredAllocation's view may be for
// the Allocate that follows it.
const steerViewTTL = time.Second

// keepSteerView keeps the view a GetPreferredAllocation read.
func (p *Plugin) keepSteerView(resource string, ids []string, v *nodeView) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastSteer = &steerView{resource: resource, ids: setOf(ids), view: v, at: time.Now()}
}

// allocateView returns the node's allocations for an Allocate of ids: the
// view of the GetPreferredAllocation just before it when the kubelet took
// devices it preferred (the kubelet admits one container at a time, so
// nothing was allocated in between), else a new List.
func (p *Plugin) allocateView(ctx context.Context, resource string, ids []string) (*nodeView, error) {
	p.mu.Lock()
	last := p.lastSteer
	p.lastSteer = nil
	p.mu.Unlock()
	if last != nil && last.resource == resource && time.Since(last.at) < steerViewTTL {
		all := true
		for _, id := range ids {
			all = all && last.ids[id]
		}
		if all {
			return last.view, nil
		}
	}
	return p.nodeView(ctx)
}

// New checks cfg and returns a plugin; Run serves it.
func New(cfg Config) (*Plugin, error) {
	var errs []error
	if !cfg.Milli && !cfg.Whole {
		errs = append(errs, errors.New("advertise at least one resource"))
	}
	if cfg.Dir == "" {
		cfg.Dir = pluginapi.DevicePluginPath
	}
	if cfg.PodResources == nil || cfg.Pods == nil {
		errs = append(errs, errors.New("the device plugin needs the kubelet's pod-resources API and the pod index to match pods to their GPUs"))
	}
	switch cfg.OnMismatch {
	case "":
		cfg.OnMismatch = OnMismatchRefuse
	case OnMismatchRefuse, OnMismatchWarn:
	default:
		errs = append(errs, fmt.Errorf("mismatch policy %q: want %s or %s", cfg.OnMismatch, OnMismatchRefuse, OnMismatchWarn))
	}
	if err := cfg.Allocation.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	inv, err := newInventory(cfg.GPUs)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("device plugin: %w", err)
	}
	p := &Plugin{
		cfg: cfg, inv: inv, metrics: newMetrics(),
		steered: map[steerKey]steered{}, preferredFor: map[string]steeredPod{},
	}
	p.health = newHealthState(inv, cfg.Health)
	return p, nil
}

func (p *Plugin) now() time.Time { return p.cfg.Now() }

// resources are the advertised resource names.
func (p *Plugin) resources() []string {
	var out []string
	if p.cfg.Milli {
		out = append(out, ResourceMilli)
	}
	if p.cfg.Whole {
		out = append(out, ResourceWhole)
	}
	return out
}

// socketPath is the plugin's socket for resource in the kubelet's directory.
func (p *Plugin) socketPath(resource string) string {
	name := "gpufleet-gpu-milli.sock"
	if resource == ResourceWhole {
		name = "gpufleet-nvidia-gpu.sock"
	}
	return filepath.Join(p.cfg.Dir, name)
}

// kubeletSocket is the kubelet's registration socket.
func (p *Plugin) kubeletSocket() string {
	return filepath.Join(p.cfg.Dir, filepath.Base(pluginapi.KubeletSocket))
}

// getPod reads one pod's devices from the kubelet.
func (p *Plugin) getPod(ctx context.Context, namespace, name string) (*podresourcesv1.PodResources, error) {
	start := time.Now()
	pr, err := p.cfg.PodResources.Get(ctx, namespace, name)
	p.metrics.gets.Observe(time.Since(start).Seconds())
	return pr, err
}

// nodeView lists the kubelet's allocations now.
func (p *Plugin) nodeView(ctx context.Context) (*nodeView, error) {
	start := time.Now()
	list, err := p.cfg.PodResources.List(ctx)
	p.metrics.lists.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	return p.inv.view(list), nil
}
