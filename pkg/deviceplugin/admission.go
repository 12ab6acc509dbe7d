package deviceplugin

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// admission is the pod the kubelet is allocating devices for, as found in
// one pod-resources List.
type admission struct {
	pod *corev1.Pod
	// devices are what the kubelet listed for the pod so far.
	devices podDevices
	// ambiguous counts the other pods that looked like it (0 normally).
	ambiguous int
}

// podWaitTimeout bounds how long the plugin waits for its pod index to see
// a pod the kubelet already lists: both watch the same API server, so the
// index is at most a moment behind.
const podWaitTimeout = 2 * time.Second

// admitting finds the pod whose container the kubelet is allocating
// resource for: the active pod (the pod-resources List holds active pods
// only) with a container that requests resource and holds no device of it
// yet. The kubelet admits one pod at a time and adds the pod to its active
// pods before it allocates, so there is one such pod. A pod whose GPU
// containers are all plain init containers (which the List leaves out)
// counts while the kubelet has not started it and the plugin has not steered
// it before. It returns nil when no pod qualifies.
func (p *Plugin) admitting(ctx context.Context, resource string, v *nodeView) *admission {
	logger := klog.FromContext(ctx)
	var found []*admission
	var unknown []podDevices
	for _, pd := range v.pods {
		pod, ok := p.cfg.Pods.ByName(pd.Namespace, pd.Name)
		if !ok {
			unknown = append(unknown, pd)
			continue
		}
		if requestsResource(pod, resource) && p.pendingDevices(pod, resource, pd) {
			found = append(found, &admission{pod: pod, devices: pd})
		}
	}
	// Only one pod waits, so a pod the index has not seen yet (it lags the
	// kubelet by a moment) matters only when no known pod waits.
	for _, pd := range unknown {
		if len(found) > 0 {
			break
		}
		pod := p.waitForPod(ctx, pd.Namespace, pd.Name)
		if pod == nil {
			logger.Info("Pod listed by the kubelet is unknown to the pod index; it is not considered for admission", "pod", klog.KRef(pd.Namespace, pd.Name))
			continue
		}
		if requestsResource(pod, resource) && p.pendingDevices(pod, resource, pd) {
			found = append(found, &admission{pod: pod, devices: pd})
		}
	}
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	// Not expected (see above); the kubelet sorts the pods of one batch by
	// creation time, so the oldest is the best guess. PreStartContainer
	// checks the outcome.
	slices.SortStableFunc(found, func(a, b *admission) int {
		return a.pod.CreationTimestamp.Compare(b.pod.CreationTimestamp.Time)
	})
	found[0].ambiguous = len(found) - 1
	names := make([]string, 0, len(found))
	for _, a := range found {
		names = append(names, podKey(a.pod.Namespace, a.pod.Name))
	}
	logger.Info("Several pods wait for devices at once; taking the oldest", "resource", resource, "pods", names)
	return found[0]
}

// pendingDevices says whether a pod the kubelet lists still waits for
// devices of resource. The kubelet allocates a pod's containers in order,
// init containers first, so the pod waits if a listed container (sidecar
// or app container) that asks for the resource holds none. The List leaves
// plain init containers out: those before a listed container that holds
// devices were allocated before it; for those after the last one, the pod
// waits while the kubelet has not started it and the plugin has steered
// fewer of its containers than ask for the resource. (Devices one plain
// init container reuses from an earlier one are never steered: such a pod
// counts as waiting until the kubelet starts it.)
func (p *Plugin) pendingDevices(pod *corev1.Pod, resource string, pd podDevices) bool {
	asking, lastListed := 0, -1
	visit := func(c *corev1.Container, listed bool) bool {
		if containerRequest(c, resource) == 0 {
			return false
		}
		asking++
		if !listed {
			return false
		}
		lastListed = asking - 1
		return len(pd.Containers[c.Name][resource]) == 0
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if visit(c, isSidecar(c)) {
			return true
		}
	}
	for i := range pod.Spec.Containers {
		if visit(&pod.Spec.Containers[i], true) {
			return true
		}
	}
	if lastListed == asking-1 {
		return false // no plain init container after the last listed one
	}
	return pod.Status.StartTime == nil && p.steeredCount(pod.UID, resource) < asking
}

// waitForPod returns the pod from the index, waiting up to podWaitTimeout
// for the index to catch up with the kubelet.
func (p *Plugin) waitForPod(ctx context.Context, namespace, name string) *corev1.Pod {
	// The real clock: this waits on another goroutine, not on Config.Now.
	start := time.Now()
	defer func() { p.metrics.indexWaits.Observe(time.Since(start).Seconds()) }()
	deadline := start.Add(podWaitTimeout)
	for {
		if pod, ok := p.cfg.Pods.ByName(namespace, name); ok {
			return pod
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// steerKey is one pod's steering of one resource.
type steerKey struct {
	uid      types.UID
	resource string
}

// steered counts the containers of a pod the plugin steered.
type steered struct {
	count int
	at    time.Time
}

// steer remembers that the plugin steered a container of a pod.
func (p *Plugin) steer(uid types.UID, resource string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	k := steerKey{uid, resource}
	p.steered[k] = steered{count: p.steered[k].count + 1, at: now}
	for u, s := range p.steered {
		if now.Sub(s.at) > steeredTTL {
			delete(p.steered, u)
		}
	}
}

// steeredTTL is how long the plugin remembers a steered pod: far longer
// than an admission takes.
const steeredTTL = 10 * time.Minute

func (p *Plugin) steeredCount(uid types.UID, resource string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.steered[steerKey{uid, resource}].count
}
