// Package cluster is the metrics adapter's view of the cluster: informers on
// pods, ReplicaSets, Deployments, StatefulSets and nodes that keep only the
// fields the adapter reads (names, labels, owners, node, IP, phase,
// readiness and gpufleet annotations), so that their memory stays small in
// large clusters.
package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	gfnames "github.com/gpufleet/gpufleet/pkg/names"
)

const (
	ownerIndex = "controller-uid"
	labelIndex = "namespace-label" // "namespace/key=value" per label of a pod
)

// Cache answers the adapter's questions about cluster objects from
// informers. Create it with New, then Start it.
type Cache struct {
	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	rs      cache.SharedIndexInformer
	deploys cache.SharedIndexInformer
	sets    cache.SharedIndexInformer
	nodes   cache.SharedIndexInformer
	labels  *labelCounts
	synced  atomic.Bool
}

// New builds the informers; nothing is watched until Start.
func New(client kubernetes.Interface) (*Cache, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(strip))
	c := &Cache{
		factory: f,
		pods:    f.Core().V1().Pods().Informer(),
		rs:      f.Apps().V1().ReplicaSets().Informer(),
		deploys: f.Apps().V1().Deployments().Informer(),
		sets:    f.Apps().V1().StatefulSets().Informer(),
		nodes:   f.Core().V1().Nodes().Informer(),
		labels:  newLabelCounts(),
	}
	for _, inf := range []cache.SharedIndexInformer{c.pods, c.rs} {
		if err := inf.AddIndexers(cache.Indexers{ownerIndex: byControllerUID}); err != nil {
			return nil, fmt.Errorf("adding the owner index: %w", err)
		}
	}
	if err := c.pods.AddIndexers(cache.Indexers{labelIndex: byNamespaceLabel}); err != nil {
		return nil, fmt.Errorf("adding the label index: %w", err)
	}
	if _, err := c.pods.AddEventHandler(c.labels.handler()); err != nil {
		return nil, fmt.Errorf("counting the label index: %w", err)
	}
	return c, nil
}

// Start starts the informers and waits for their first lists.
func (c *Cache) Start(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("the %v informer did not sync: %w", typ, ctx.Err())
		}
	}
	c.synced.Store(true)
	return nil
}

// Synced reports whether Start has seen every informer's first list.
func (c *Cache) Synced() bool { return c.synced.Load() }

// OnPodChange calls f (with no arguments: callers re-read the cache) after
// every pod event. f must not block.
func (c *Cache) OnPodChange(f func()) error {
	call := func(any) { f() }
	_, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    call,
		UpdateFunc: func(_, _ any) { f() },
		DeleteFunc: call,
	})
	return err
}

// Pod returns the pod, or nil.
func (c *Cache) Pod(namespace, name string) *corev1.Pod {
	obj, ok, _ := c.pods.GetStore().GetByKey(namespace + "/" + name)
	if !ok {
		return nil
	}
	return obj.(*corev1.Pod)
}

// Pods lists the pods of namespace (all namespaces for "") whose labels
// match sel (nil: all), sorted by namespace and name. In a namespace, an
// equality requirement of sel (key=value, or key in (a,b)) narrows the
// candidates through a label index first: an HPA's query for 1,000 of
// 10,000 pods looks at 1,000.
func (c *Cache) Pods(namespace string, sel labels.Selector) []*corev1.Pod {
	var objs []any
	switch {
	case namespace == "":
		objs = c.pods.GetStore().List()
	default:
		var ok bool
		if objs, ok = c.byLabel(namespace, sel); !ok {
			objs, _ = c.pods.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
		}
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if sel == nil || sel.Matches(labels.Set(p.Labels)) {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return pods
}

// byLabel returns the pods of namespace that carry the values of sel's most
// selective equality requirement, or false when sel has none.
func (c *Cache) byLabel(namespace string, sel labels.Selector) ([]any, bool) {
	if sel == nil {
		return nil, false
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, false
	}
	var best []string
	bestCount := -1
	for _, r := range reqs {
		if op := r.Operator(); op != selection.Equals && op != selection.DoubleEquals && op != selection.In {
			continue
		}
		var keys []string
		n := 0
		for v := range r.Values() {
			k := namespace + "/" + r.Key() + "=" + v
			keys = append(keys, k)
			n += c.labels.count(k)
		}
		if bestCount < 0 || n < bestCount {
			best, bestCount = keys, n
		}
	}
	if bestCount < 0 {
		return nil, false
	}
	var objs []any
	for _, k := range best {
		got, _ := c.pods.GetIndexer().ByIndex(labelIndex, k)
		objs = append(objs, got...)
	}
	return objs, true
}

func byNamespaceLabel(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(m.GetLabels()))
	for k, v := range m.GetLabels() {
		keys = append(keys, m.GetNamespace()+"/"+k+"="+v)
	}
	return keys, nil
}

// Workload is a Deployment or StatefulSet.
type Workload struct {
	Kind      string // "Deployment" or "StatefulSet"
	Namespace string
	Name      string
	UID       types.UID
	// Annotations are the workload's gpufleet.io/* annotations (e.g.
	// gpufleet.io/startup-seconds, the forecast's horizon).
	Annotations map[string]string
}

// Workloads lists the Deployments or StatefulSets (kind) of namespace whose
// labels match sel, sorted by name.
func (c *Cache) Workloads(kind, namespace string, sel labels.Selector) ([]Workload, error) {
	inf, err := c.workloadInformer(kind)
	if err != nil {
		return nil, err
	}
	objs, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	var out []Workload
	for _, o := range objs {
		m := o.(metav1.Object)
		if sel == nil || sel.Matches(labels.Set(m.GetLabels())) {
			out = append(out, Workload{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), Annotations: m.GetAnnotations()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Workload returns one Deployment or StatefulSet, if it exists.
func (c *Cache) Workload(kind, namespace, name string) (Workload, bool, error) {
	inf, err := c.workloadInformer(kind)
	if err != nil {
		return Workload{}, false, err
	}
	obj, ok, _ := inf.GetStore().GetByKey(namespace + "/" + name)
	if !ok {
		return Workload{}, false, nil
	}
	m := obj.(metav1.Object)
	return Workload{Kind: kind, Namespace: namespace, Name: name, UID: m.GetUID(), Annotations: m.GetAnnotations()}, true, nil
}

func (c *Cache) workloadInformer(kind string) (cache.SharedIndexInformer, error) {
	switch kind {
	case "Deployment":
		return c.deploys, nil
	case "StatefulSet":
		return c.sets, nil
	}
	return nil, fmt.Errorf("unsupported workload kind %q (Deployment or StatefulSet)", kind)
}

// WorkloadPods lists the pods a workload controls: a StatefulSet's own pods,
// a Deployment's pods through its ReplicaSets.
func (c *Cache) WorkloadPods(w Workload) []*corev1.Pod {
	owners := []string{string(w.UID)}
	if w.Kind == "Deployment" {
		owners = owners[:0]
		sets, _ := c.rs.GetIndexer().ByIndex(ownerIndex, string(w.UID))
		for _, o := range sets {
			owners = append(owners, string(o.(metav1.Object).GetUID()))
		}
	}
	var pods []*corev1.Pod
	for _, uid := range owners {
		objs, _ := c.pods.GetIndexer().ByIndex(ownerIndex, uid)
		for _, o := range objs {
			pods = append(pods, o.(*corev1.Pod))
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

// Nodes lists the names of the nodes whose labels match sel, sorted.
func (c *Cache) Nodes(sel labels.Selector) []string {
	var names []string
	for _, o := range c.nodes.GetStore().List() {
		m := o.(metav1.Object)
		if sel == nil || sel.Matches(labels.Set(m.GetLabels())) {
			names = append(names, m.GetName())
		}
	}
	sort.Strings(names)
	return names
}

// NodeObjects lists the nodes (names, labels, GPU allocatable), sorted by
// name.
func (c *Cache) NodeObjects() []*corev1.Node {
	objs := c.nodes.GetStore().List()
	out := make([]*corev1.Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Node))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Owner names the workload that controls a pod: its Deployment (through
// its ReplicaSet), StatefulSet, Job, DaemonSet, ReplicaSet without a
// Deployment, or ("Pod", its name) when nothing controls it.
func (c *Cache) Owner(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		return "Pod", p.Name
	}
	if ref.Kind == "ReplicaSet" {
		if obj, ok, _ := c.rs.GetStore().GetByKey(p.Namespace + "/" + ref.Name); ok {
			if d := metav1.GetControllerOfNoCopy(obj.(metav1.Object)); d != nil && d.Kind == "Deployment" {
				return d.Kind, d.Name
			}
		}
	}
	return ref.Kind, ref.Name
}

// HasNode reports whether the node exists.
func (c *Cache) HasNode(name string) bool {
	_, ok, _ := c.nodes.GetStore().GetByKey(name)
	return ok
}

func byControllerUID(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// strip keeps only what the adapter reads of an object. It runs before an
// object enters an informer's store.
func strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return stripPod(o), nil
	case *corev1.Node:
		return &corev1.Node{ObjectMeta: stripMeta(o.ObjectMeta, false),
			Status: corev1.NodeStatus{Allocatable: gfnames.GPUResources(o.Status.Allocatable)}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: stripMeta(o.ObjectMeta, false)}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: stripMeta(o.ObjectMeta, true)}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: stripMeta(o.ObjectMeta, true)}, nil
	}
	return obj, nil // tombstones and anything else pass unchanged
}

func stripMeta(m metav1.ObjectMeta, annotations bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Labels:            m.Labels,
		OwnerReferences:   m.OwnerReferences,
		DeletionTimestamp: m.DeletionTimestamp,
	}
	if annotations {
		for k, v := range m.Annotations {
			if strings.HasPrefix(k, "gpufleet.io/") {
				if out.Annotations == nil {
					out.Annotations = map[string]string{}
				}
				out.Annotations[k] = v
			}
		}
	}
	return out
}

func stripPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		ObjectMeta: stripMeta(p.ObjectMeta, true),
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, StartTime: p.Status.StartTime},
	}
	// GPU requests, for cost accounting: one container holding the pod's
	// effective request (the larger of the sum of its containers' and its
	// largest init container's, as the scheduler counts).
	if req := podGPURequests(p); len(req) > 0 {
		out.Spec.Containers = []corev1.Container{{Name: "gpu-requests", Resources: corev1.ResourceRequirements{Requests: req}}}
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		// When it released its GPUs: its containers' finish times.
		out.Status.InitContainerStatuses = finishTimes(p.Status.InitContainerStatuses)
		out.Status.ContainerStatuses = finishTimes(p.Status.ContainerStatuses)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out
}

// Running reports whether a pod runs and is not being deleted: only such
// pods have metrics.
func Running(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != ""
}

// finishTimes keeps the name and finish time of terminated containers.
func finishTimes(cs []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range cs {
		if t := c.State.Terminated; t != nil {
			out = append(out, corev1.ContainerStatus{Name: c.Name, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{FinishedAt: t.FinishedAt, ExitCode: t.ExitCode}}})
		}
	}
	return out
}

// podGPURequests is a pod's effective GPU request: per resource, the larger
// of the sum over its containers and the largest init container.
func podGPURequests(p *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for name, q := range gfnames.GPUResources(c.Resources.Requests) {
			sum := out[name]
			sum.Add(q)
			out[name] = sum
		}
	}
	for _, c := range p.Spec.InitContainers {
		for name, q := range gfnames.GPUResources(c.Resources.Requests) {
			if cur, ok := out[name]; !ok || q.Cmp(cur) > 0 {
				out[name] = q
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
