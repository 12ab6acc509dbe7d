package attribution

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/names"
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

// PodSource lists and watches pods: the API server through a small REST
// client (the agent does not link the generated clientset, which registers
// every API group and would triple its memory), or a typed or fake
// clientset's Pods("") in tests.
type PodSource interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// NewPodIndex returns an index of the pods bound to nodeName. It watches
// nothing until Run.
func NewPodIndex(pods PodSource, nodeName string) *PodIndex {
	onNode := fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = onNode
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = onNode
			return pods.Watch(ctx, o)
		},
	}
	// Streaming lists (watch-list) where the source supports them; fake
	// clientsets say they do not.
	informer := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, pods), &corev1.Pod{}, 0, cache.Indexers{podUIDIndex: indexPodUID})
	// Installed before the informer starts, as SetTransform requires.
	_ = informer.SetTransform(stripPod)
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

// ByName returns the pod namespace/name as the index last saw it, with the
// fields stripPod keeps.
func (p *PodIndex) ByName(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := p.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	pod, ok := obj.(*corev1.Pod)
	return pod, ok
}

func indexPodUID(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return []string{string(pod.UID)}, nil
}

// stripPod is the informer's transform: it keeps a pod's name, namespace,
// UID and creation time, its gpufleet.io/gpu-indices annotation, its node,
// phase and start time, each container's name, restart policy and GPU
// requests (the device plugin matches admissions with them), and the name
// and ID of each container status that has an ID (init and ephemeral
// containers included: a sidecar may use the GPU); it drops the rest. It
// returns a new object and leaves its argument alone; applied to its own
// result it returns an equal object.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         pod.Namespace,
			Name:              pod.Name,
			UID:               pod.UID,
			CreationTimestamp: pod.CreationTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:       pod.Spec.NodeName,
			InitContainers: stripContainers(pod.Spec.InitContainers),
			Containers:     stripContainers(pod.Spec.Containers),
		},
		Status: corev1.PodStatus{
			Phase:                      pod.Status.Phase,
			StartTime:                  pod.Status.StartTime,
			ContainerStatuses:          stripStatuses(pod.Status.ContainerStatuses),
			InitContainerStatuses:      stripStatuses(pod.Status.InitContainerStatuses),
			EphemeralContainerStatuses: stripStatuses(pod.Status.EphemeralContainerStatuses),
		},
	}
	if v, ok := pod.Annotations[names.AnnotationGPUIndices]; ok {
		out.Annotations = map[string]string{names.AnnotationGPUIndices: v}
	}
	return out, nil
}

// stripContainers keeps each container's name, restart policy (a sidecar's
// is Always) and its GPU requests and limits.
func stripContainers(in []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range in {
		out = append(out, corev1.Container{
			Name:          c.Name,
			RestartPolicy: c.RestartPolicy,
			Resources: corev1.ResourceRequirements{
				Limits:   names.GPUResources(c.Resources.Limits),
				Requests: names.GPUResources(c.Resources.Requests),
			},
		})
	}
	return out
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
