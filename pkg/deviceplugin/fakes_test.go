package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
)

// fakePodResources is the kubelet's pod-resources API as the plugin reads
// it: the active pods, each with its sidecars and app containers (not its
// plain init containers, which the API leaves out) and their device IDs.
// Tests change it as the kubelet would.
type fakePodResources struct {
	mu   sync.Mutex
	pods []*listedPod
	err  error
	// gets and listCalls count the calls answered.
	gets, listCalls int
}

type listedPod struct {
	namespace, name string
	containers      []*listedContainer
}

type listedContainer struct {
	name    string
	devices map[string][]string // by resource
}

var _ PodResourcesLister = &fakePodResources{}

// List builds a fresh answer each time, as a gRPC client would get.
func (f *fakePodResources) List(context.Context) ([]*podresourcesv1.PodResources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	return f.listLocked()
}

func (f *fakePodResources) listLocked() ([]*podresourcesv1.PodResources, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []*podresourcesv1.PodResources
	for _, p := range f.pods {
		pr := &podresourcesv1.PodResources{Namespace: p.namespace, Name: p.name}
		for _, c := range p.containers {
			cr := &podresourcesv1.ContainerResources{Name: c.name}
			for _, res := range slices.Sorted(maps.Keys(c.devices)) {
				cr.Devices = append(cr.Devices, &podresourcesv1.ContainerDevices{ResourceName: res, DeviceIds: slices.Clone(c.devices[res])})
			}
			pr.Containers = append(pr.Containers, cr)
		}
		out = append(out, pr)
	}
	return out, nil
}

// Get answers for one pod the way List would list it (the fake keeps
// active pods only, so a pod the kubelet rejected is not found).
func (f *fakePodResources) Get(_ context.Context, namespace, name string) (*podresourcesv1.PodResources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	all, err := f.listLocked()
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p.Namespace == namespace && p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, attribution.ErrPodNotListed)
}

// calls returns how many Gets and Lists were answered.
func (f *fakePodResources) calls() (gets, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.listCalls
}

// activate lists pod as the kubelet does once it admits it: its sidecars
// and app containers, without devices.
func (f *fakePodResources) activate(pod *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &listedPod{namespace: pod.Namespace, name: pod.Name}
	for _, c := range pod.Spec.InitContainers {
		if isSidecarSpec(c) {
			p.containers = append(p.containers, &listedContainer{name: c.Name, devices: map[string][]string{}})
		}
	}
	for _, c := range pod.Spec.Containers {
		p.containers = append(p.containers, &listedContainer{name: c.Name, devices: map[string][]string{}})
	}
	f.pods = slices.DeleteFunc(f.pods, func(q *listedPod) bool { return q.namespace == p.namespace && q.name == p.name })
	f.pods = append(f.pods, p)
}

// lists says whether the pod is active.
func (f *fakePodResources) lists(namespace, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.pods, func(q *listedPod) bool { return q.namespace == namespace && q.name == name })
}

// remove drops the pod from the active pods.
func (f *fakePodResources) remove(namespace, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods = slices.DeleteFunc(f.pods, func(q *listedPod) bool { return q.namespace == namespace && q.name == name })
}

// setDevices records the IDs of resource a listed container holds.
func (f *fakePodResources) setDevices(namespace, pod, container, resource string, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pods {
		if p.namespace != namespace || p.name != pod {
			continue
		}
		for _, c := range p.containers {
			if c.name == container {
				c.devices[resource] = slices.Clone(ids)
				return
			}
		}
	}
	panic("fakePodResources: no listed container " + namespace + "/" + pod + "/" + container)
}

// fail makes List fail (nil: answer again).
func (f *fakePodResources) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func isSidecarSpec(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// fakePods is the pod index: pods by namespace/name.
type fakePods struct {
	mu   sync.Mutex
	pods map[string]*corev1.Pod
	// misses are how many more lookups miss a pod the index has not seen
	// yet.
	misses map[string]int
}

var _ PodLookup = &fakePods{}

func (f *fakePods) ByName(namespace, name string) (*corev1.Pod, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := namespace + "/" + name
	if f.misses[key] > 0 {
		f.misses[key]--
		return nil, false
	}
	p, ok := f.pods[key]
	if !ok {
		return nil, false
	}
	return p.DeepCopy(), true
}

func (f *fakePods) add(pod *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pods == nil {
		f.pods = map[string]*corev1.Pod{}
	}
	f.pods[pod.Namespace+"/"+pod.Name] = pod.DeepCopy()
}

// lag makes the next n lookups of pod miss, as an index whose watch lags
// behind the kubelet.
func (f *fakePods) lag(pod *corev1.Pod, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.misses == nil {
		f.misses = map[string]int{}
	}
	f.misses[pod.Namespace+"/"+pod.Name] = n
}

// fakeEvents records the Events the plugin posts.
type fakeEvents struct {
	mu     sync.Mutex
	events []*corev1.Event
	err    error
}

var _ EventSink = &fakeEvents{}

func (f *fakeEvents) CreateEvent(_ context.Context, ev *corev1.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, ev.DeepCopy())
	return nil
}

// fail makes CreateEvent fail (nil: succeed again).
func (f *fakeEvents) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// withReason returns the recorded Events with reason.
func (f *fakeEvents) withReason(reason string) []*corev1.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*corev1.Event
	for _, ev := range f.events {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

func (f *fakeEvents) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// errListFailed is a pod-resources API that does not answer.
var errListFailed = errors.New("rpc error: code = Unavailable desc = connection refused")
