package deviceplugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

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
func (p *Plugin) verify(ctx context.Context, resource string, ids []string) error {
	logger := klog.FromContext(ctx)
	v, err := p.nodeView(ctx)
	if err != nil {
		return err
	}
	var pod *corev1.Pod
	container := ""
	if ref, ok := v.holder(resource, ids); ok {
		pod = p.waitForPod(ctx, ref.Namespace, ref.Pod)
		container = ref.Container
	} else if uid, ok := p.preferredPod(ids); ok {
		// A plain init container: the pod-resources API does not list it,
		// but the plugin steered its devices.
		for _, pd := range v.pods {
			if cand, found := p.cfg.Pods.ByName(pd.Namespace, pd.Name); found && string(cand.UID) == uid {
				pod, container = cand, "(init container)"
			}
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
	p.preferredFor[idSetKey(ids)] = a.pod.UID
}

func (p *Plugin) preferredPod(ids []string) (uid string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.preferredFor[idSetKey(ids)]
	return string(u), ok
}

func idSetKey(ids []string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}
