package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"
)

// socketDir returns a fresh directory whose socket paths fit the 108-byte
// limit on unix socket paths.
func socketDir(t *testing.T) string {
	t.Helper()
	if dir := t.TempDir(); len(dir) < 70 {
		return dir
	}
	dir, err := os.MkdirTemp("", "dp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// eventually polls cond until it holds, and fails the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// metric returns the value of the plugin's series name with labels (name,
// value pairs) as /metrics shows it; 0 when the series is absent.
func metric(t *testing.T, p *Plugin, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// advertised are the resources cfg advertises.
func advertised(cfg Config) []string {
	var out []string
	if cfg.Milli {
		out = append(out, ResourceMilli)
	}
	if cfg.Whole {
		out = append(out, ResourceWhole)
	}
	return out
}

// runPlugin runs a plugin for cfg; stop ends Run and returns its error.
// The test's end stops it too.
func runPlugin(t *testing.T, cfg Config) (p *Plugin, stop func() error) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return within 10s of its context's end")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p, stop
}

// harness is a node: a fake kubelet, its pod-resources API, the pod index,
// an Event sink, and the plugin registered with the kubelet.
type harness struct {
	t       *testing.T
	dir     string
	cfg     Config
	podres  *fakePodResources
	pods    *fakePods
	events  *fakeEvents
	kubelet *fakeKubelet
	plugin  *Plugin
	stop    func() error
	// given are the IDs the kubelet gave each pod, by pod name.
	given map[string]map[string][]string
}

// start starts a DGX-1 node whose plugin advertises both resources, with
// cfg changed by opts, and waits until the kubelet has both device lists.
func start(t *testing.T, opts ...func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t: t, dir: socketDir(t),
		podres: &fakePodResources{}, pods: &fakePods{}, events: &fakeEvents{},
		given: map[string]map[string][]string{},
	}
	h.kubelet = startFakeKubelet(t, h.dir)
	h.cfg = Config{
		NodeName: testNode, GPUs: dgx1(), Milli: true, Whole: true, Dir: h.dir,
		PodResources: h.podres, Pods: h.pods, Events: h.events,
		HealthInterval: 20 * time.Millisecond,
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	h.plugin, h.stop = runPlugin(t, h.cfg)
	h.kubelet.waitRegistered(t, 0, advertised(h.cfg)...)
	return h
}

func warnOnMismatch(c *Config) { c.OnMismatch = OnMismatchWarn }

// admit admits pod as the kubelet does: the pod index knows it, the
// kubelet adds it to its active pods, then allocates each GPU container's
// devices in order, init containers first (GetPreferredAllocation and
// Allocate), and lists each sidecar's and app container's devices in
// pod-resources once it has them. On an error the kubelet rejects the pod:
// it leaves the active pods and its devices are free again.
func (h *harness) admit(pod *corev1.Pod) (map[string]*containerAlloc, error) {
	h.t.Helper()
	h.pods.add(pod)
	h.podres.activate(pod)
	out := map[string]*containerAlloc{}
	reuse := map[string]map[string]bool{}
	type ctr struct {
		c         corev1.Container
		plainInit bool
	}
	var ctrs []ctr
	for _, c := range pod.Spec.InitContainers {
		ctrs = append(ctrs, ctr{c, !isSidecarSpec(c)})
	}
	for _, c := range pod.Spec.Containers {
		ctrs = append(ctrs, ctr{c, false})
	}
	for _, c := range ctrs {
		res, n := gpuRequest(h.t, c.c)
		if n == 0 {
			continue
		}
		a, err := h.kubelet.allocateContainer(h.t, res, n, reuse[res])
		if err != nil {
			h.evict(pod)
			return out, fmt.Errorf("container %s: %w", c.c.Name, err)
		}
		out[c.c.Name] = a
		h.record(pod.Name, res, a.devices)
		if reuse[res] == nil {
			reuse[res] = map[string]bool{}
		}
		for _, id := range a.devices {
			if c.plainInit {
				reuse[res][id] = true
			} else {
				delete(reuse[res], id)
			}
		}
		if !c.plainInit {
			h.podres.setDevices(pod.Namespace, pod.Name, c.c.Name, res, a.devices)
		}
	}
	return out, nil
}

// mustAdmit admits pod and fails the test if the kubelet rejects it.
func (h *harness) mustAdmit(pod *corev1.Pod) map[string]*containerAlloc {
	h.t.Helper()
	allocs, err := h.admit(pod)
	if err != nil {
		h.t.Fatalf("admitting %s: %v", pod.Name, err)
	}
	return allocs
}

// hold makes pod an active pod whose listed container holds ids of
// resource, given out by the kubelet without the plugin's preference.
func (h *harness) hold(pod *corev1.Pod, container, resource string, ids []string) {
	h.t.Helper()
	h.pods.add(pod)
	if !h.podres.lists(pod.Namespace, pod.Name) {
		h.podres.activate(pod)
	}
	h.kubelet.take(resource, ids)
	h.record(pod.Name, resource, ids)
	h.podres.setDevices(pod.Namespace, pod.Name, container, resource, ids)
}

func (h *harness) record(pod, resource string, ids []string) {
	if h.given[pod] == nil {
		h.given[pod] = map[string][]string{}
	}
	h.given[pod][resource] = append(h.given[pod][resource], ids...)
}

// evict ends pod: it leaves the active pods and its devices are free.
func (h *harness) evict(pod *corev1.Pod) {
	h.podres.remove(pod.Namespace, pod.Name)
	for res, ids := range h.given[pod.Name] {
		h.kubelet.give(res, ids)
	}
	delete(h.given, pod.Name)
}

// preStart calls PreStartContainer for every container of allocs, as the
// kubelet does when it starts them, and returns the errors by container.
func (h *harness) preStart(allocs map[string]*containerAlloc) map[string]error {
	h.t.Helper()
	errs := map[string]error{}
	for name, a := range allocs {
		if err := h.kubelet.preStart(h.t, a.resource, a.devices); err != nil {
			errs[name] = err
		}
	}
	return errs
}

// gpuRequest returns the one GPU resource a container requests and how
// much.
func gpuRequest(t *testing.T, c corev1.Container) (string, int) {
	t.Helper()
	res, n := "", 0
	for _, r := range []string{ResourceMilli, ResourceWhole} {
		if q, ok := c.Resources.Limits[corev1.ResourceName(r)]; ok && q.Value() > 0 {
			if res != "" {
				t.Fatalf("container %s requests both GPU resources", c.Name)
			}
			res, n = r, int(q.Value())
		}
	}
	return res, n
}

// missing returns the parts of want that s lacks, for failure messages.
func missing(s string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !strings.Contains(s, w) {
			out = append(out, w)
		}
	}
	return out
}

// errMsg is err's message, "" for nil.
func errMsg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
