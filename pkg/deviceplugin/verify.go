package deviceplugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// mismatch is a container whose devices are not its pod's annotated GPUs.
type mismatch struct {
	pod       *corev1.Pod
	container string
	msg       string
}

func (m *mismatch) Error() string { return m.msg }

// verify checks, before the kubelet starts a container, that the devices
// it holds (ids of resource) are GPUs of its pod's gpufleet.io/gpu-indices:
// a share on the annotated GPU, whole GPUs among the annotated ones. It
// returns a *mismatch if not, another error if the kubelet could not be
// asked, and nil otherwise (also for pods without the annotation, which
// gpufleet's scheduler did not place, and for containers it cannot find).
//
// The container is found with one pod-resources Get of the pod the plugin
// steered these devices for (device IDs are given to one container at a
// time, so the pod that holds them is that pod), else with a List of every
// active pod.
func (p *Plugin) verify(ctx context.Context, resource string, ids []string) error {
	logger := klog.FromContext(ctx)
	pod, container, found := p.holderByGet(ctx, resource, ids)
	if !found {
		var err error
		if pod, container, err = p.holderByList(ctx, resource, ids); err != nil {
			return err
		}
	}
	if pod == nil {
		p.metrics.unverified.WithLabelValues(resource).Inc()
		logger.Info("No listed container holds these devices; cannot check them against an annotation", "resource", resource, "devices", len(ids))
		return nil
	}
	annotated, ok, err := p.inv.annotatedGPUs(pod)
	if !ok {
		return nil
	}
	who := podKey(pod.Namespace, pod.Name) + " container " + container
	if err != nil {
		return &mismatch{pod: pod, container: container, msg: fmt.Sprintf("%s: %v", who, err)}
	}
	gpus, _, err := p.inv.gpusOf(resource, ids)
	if err != nil {
		return &mismatch{pod: pod, container: container, msg: fmt.Sprintf("%s: %v", who, err)}
	}
	var wrong []int
	for _, g := range gpus {
		if !slices.Contains(annotated, g) {
			wrong = append(wrong, g.Index)
		}
	}
	if len(wrong) == 0 && (resource != ResourceMilli || len(gpus) == 1) {
		p.metrics.verified.WithLabelValues(resource).Inc()
		return nil
	}
	return &mismatch{pod: pod, container: container, msg: fmt.Sprintf(
		"%s holds %s on GPUs %s but its annotation %s=%s names GPUs %s",
		who, resource, indexList(gpus), names.AnnotationGPUIndices, pod.Annotations[names.AnnotationGPUIndices], indexList(annotated))}
}

// holderByGet finds the container holding ids in the pod the plugin
// steered them for, with one Get. found is false when that does not settle
// it (no such pod steered, the kubelet or the index lacks it, or another of
// its containers than the one steered holds them): List decides then.
func (p *Plugin) holderByGet(ctx context.Context, resource string, ids []string) (pod *corev1.Pod, container string, found bool) {
	sp, ok := p.preferredPod(ids)
	if !ok {
		return nil, "", false
	}
	pr, err := p.getPod(ctx, sp.namespace, sp.name)
	if err != nil {
		return nil, "", false
	}
	cand, ok := p.cfg.Pods.ByName(sp.namespace, sp.name)
	if !ok || cand.UID != sp.uid {
		return nil, "", false
	}
	v := p.inv.view([]*podresourcesv1.PodResources{pr})
	if ref, ok := v.holder(resource, ids); ok {
		return cand, ref.Container, true
	}
	if hasPlainInitContainer(cand, resource) {
		// No listed container holds them: a plain init container does
		// (the pod-resources API does not list those).
		return cand, "(init container)", true
	}
	return nil, "", false
}

// hasPlainInitContainer says whether an init container of pod that is not
// a sidecar requests resource.
func hasPlainInitContainer(pod *corev1.Pod, resource string) bool {
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; !isSidecar(c) && containerRequest(c, resource) > 0 {
			return true
		}
	}
	return false
}

// holderByList finds the container holding ids among every active pod.
func (p *Plugin) holderByList(ctx context.Context, resource string, ids []string) (*corev1.Pod, string, error) {
	v, err := p.nodeView(ctx)
	if err != nil {
		return nil, "", err
	}
	if ref, ok := v.holder(resource, ids); ok {
		return p.waitForPod(ctx, ref.Namespace, ref.Pod), ref.Container, nil
	}
	if sp, ok := p.preferredPod(ids); ok {
		// A plain init container: the pod-resources API does not list it,
		// but the plugin steered its devices.
		for _, pd := range v.pods {
			if cand, found := p.cfg.Pods.ByName(pd.Namespace, pd.Name); found && cand.UID == sp.uid {
				return cand, "(init container)", nil
			}
		}
	}
	return nil, "", nil
}

// steeredPod is the pod a preferred device set was steered for.
type steeredPod struct {
	uid             types.UID
	namespace, name string
}

// remember records the pod a preferred device set was steered for.
func (p *Plugin) remember(a *admission, resource string, ids []string) {
	if a == nil {
		return
	}
	p.steer(a.pod.UID, resource)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.preferredFor) > 4096 {
		clear(p.preferredFor)
	}
	p.preferredFor[idSetKey(ids)] = steeredPod{uid: a.pod.UID, namespace: a.pod.Namespace, name: a.pod.Name}
}

func (p *Plugin) preferredPod(ids []string) (steeredPod, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.preferredFor[idSetKey(ids)]
	return sp, ok
}

func idSetKey(ids []string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}
