package attribution

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// podUIDIndex is the name of the informer index on metadata.uid.
const podUIDIndex = "uid"

// PodIndex resolves pod UIDs and container IDs, as found in a process's
// cgroup, to pods bound to one node. It is backed by an informer that watches
// only that node's pods and keeps only the fields attribution needs, so its
// memory stays small on busy nodes.
type PodIndex struct {
	nodeName string
	informer cache.SharedIndexInformer
}

// NewPodIndex returns an index of the pods bound to nodeName. It watches
// nothing until Run.
func NewPodIndex(client kubernetes.Interface, nodeName string) *PodIndex {
	onNode := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	}
	// The factory installs the transform before the informer can start,
	// which SetTransform on a started informer would refuse.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripPod))
	informer := factory.InformerFor(&corev1.Pod{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(c, metav1.NamespaceAll, resync, cache.Indexers{podUIDIndex: indexPodUID}, onNode)
	})
	return &PodIndex{nodeName: nodeName, informer: informer}
}

// Run watches the node's pods until ctx is done.
func (p *PodIndex) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Starting pod index", "node", p.nodeName)
	p.informer.RunWithContext(ctx)
	logger.V(2).Info("Stopped pod index", "node", p.nodeName)
}

// HasSynced reports whether the index has listed the node's pods once; until
// then ByUID may miss pods that exist.
func (p *PodIndex) HasSynced() bool {
	return p.informer.HasSynced()
}

// ByUID returns the pod with the given UID. If containerID (64 hex digits,
// without the "containerd://" style prefix, as PodFromCgroup returns it)
// matches one of the pod's container statuses, Container is that
// container's name; otherwise Container is empty.
func (p *PodIndex) ByUID(uid, containerID string) (PodRef, bool) {
	// ByIndex fails only for an index that was never added; podUIDIndex is
	// added in NewPodIndex.
	objs, err := p.informer.GetIndexer().ByIndex(podUIDIndex, uid)
	if err != nil || len(objs) == 0 {
		return PodRef{}, false
	}
	pod, ok := objs[0].(*corev1.Pod)
	if !ok {
		return PodRef{}, false
	}
	return PodRef{
		Namespace: pod.Namespace,
		Name:      pod.Name,
		Container: containerName(pod, containerID),
		UID:       string(pod.UID),
	}, true
}

// containerName returns the name of the pod's container, init container or
// ephemeral container whose status has the given ID, or "".
func containerName(pod *corev1.Pod, containerID string) string {
	if containerID == "" {
		return ""
	}
	for _, statuses := range [][]corev1.ContainerStatus{
		pod.Status.ContainerStatuses,
		pod.Status.InitContainerStatuses,
		pod.Status.EphemeralContainerStatuses,
	} {
		for _, s := range statuses {
			// "containerd://<id>", "cri-o://<id>", "docker://<id>".
			if _, id, found := strings.Cut(s.ContainerID, "://"); found && id == containerID {
				return s.Name
			}
		}
	}
	return ""
}

func indexPodUID(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return []string{string(pod.UID)}, nil
}

// stripPod is the informer's transform: it keeps a pod's name, namespace and
// UID, and the name and ID of each container status that has an ID (init and
// ephemeral containers included: a sidecar may use the GPU), and drops the
// rest. It returns a new object and leaves its argument alone; applied to its
// own result it returns an equal object.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace,
			Name:      pod.Name,
			UID:       pod.UID,
		},
		Status: corev1.PodStatus{
			ContainerStatuses:          stripStatuses(pod.Status.ContainerStatuses),
			InitContainerStatuses:      stripStatuses(pod.Status.InitContainerStatuses),
			EphemeralContainerStatuses: stripStatuses(pod.Status.EphemeralContainerStatuses),
		},
	}, nil
}

func stripStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, s := range in {
		if s.ContainerID == "" {
			continue
		}
		out = append(out, corev1.ContainerStatus{Name: s.Name, ContainerID: s.ContainerID})
	}
	return out
}
