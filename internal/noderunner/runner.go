// Package noderunner is TEST AND DEMO INFRASTRUCTURE, not a product: it
// plays the kubelet for simulated nodes (Node objects without a kubelet) on
// a local control plane. For each pod bound to one of its nodes it starts a
// workload on the pod's own loopback address (127.x.y.z), reports the pod
// Running and Ready with that IP, and when the pod is deleted it reports the
// pod not ready, stops the workload (which may drain) and removes the pod
// object, as a kubelet would. Workloads are in-process servers (Exporter) or
// real programs (Process).
package noderunner

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Workload is what runs for a pod: Start begins serving on ip and returns
// a stop function that ends it (graceful: it may wait for work in flight).
type Workload interface {
	Start(ctx context.Context, pod *corev1.Pod, ip string) (stop func(), err error)
}

// Runner runs the pods of its nodes. Create it with New.
type Runner struct {
	client   kubernetes.Interface
	nodes    map[string]bool
	workload Workload
	// bindTo, when set, binds unscheduled pods of scheduler bindScheduler to
	// this node (for tests that run no scheduler).
	bindTo, bindScheduler string

	queue workqueue.TypedRateLimitingInterface[string]
	store cache.Store

	mu      sync.Mutex
	running map[types.UID]*instance
	ips     *ipPool
}

type instance struct {
	ip   string
	stop func()
}

// Option configures a Runner.
type Option func(*Runner)

// WithBinding makes the runner bind pending pods whose schedulerName is
// scheduler to node (one of its nodes): a stand-in for a scheduler in tests
// that do not test scheduling.
func WithBinding(scheduler, node string) Option {
	return func(r *Runner) { r.bindScheduler, r.bindTo = scheduler, node }
}

// WithIPBlock makes the runner give its pods addresses 127.block.1.1,
// 127.block.1.2, ... instead of 127.0.1.1, ...: runners side by side (one
// per simulated node, or in parallel tests) each take their own block so
// their pods never share an address.
func WithIPBlock(block byte) Option {
	return func(r *Runner) { r.ips = newIPPool(block) }
}

// New returns a runner for the named nodes.
func New(client kubernetes.Interface, nodes []string, w Workload, opts ...Option) *Runner {
	r := &Runner{
		client:   client,
		nodes:    map[string]bool{},
		workload: w,
		running:  map[types.UID]*instance{},
		ips:      newIPPool(0),
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	for _, n := range nodes {
		r.nodes[n] = true
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run handles pods until ctx ends, then stops every workload.
func (r *Runner) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(r.client, 0)
	inf := f.Core().V1().Pods().Informer()
	r.store = inf.GetStore()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, o any) { r.enqueue(o) },
		DeleteFunc: r.enqueue,
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	f.Shutdown()
	// Stop every workload at once: graceful stops may each take a while.
	r.mu.Lock()
	defer r.mu.Unlock()
	var stops sync.WaitGroup
	for uid, in := range r.running {
		stops.Go(in.stop)
		delete(r.running, uid)
	}
	stops.Wait()
	return nil
}

func (r *Runner) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		r.queue.Add(key)
	}
}

func (r *Runner) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	if err := r.sync(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("Retrying pod", "pod", key, "err", err)
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// sync brings one pod to its wanted state.
func (r *Runner) sync(ctx context.Context, key string) error {
	obj, exists, err := r.store.GetByKey(key)
	if err != nil {
		return err
	}
	if !exists {
		r.stopGone()
		return nil
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		if r.bindTo != "" && pod.Spec.SchedulerName == r.bindScheduler && pod.DeletionTimestamp == nil {
			return r.bind(ctx, pod)
		}
		return nil
	}
	if !r.nodes[pod.Spec.NodeName] {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		// As a kubelet does, the pod leaves the ready set before its
		// workload stops, so clients following readiness stop sending first.
		if r.isRunning(pod.UID) && Ready(pod) {
			if err := r.reportNotReady(ctx, pod); err != nil {
				return err
			}
		}
		r.stop(pod.UID)
		err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	r.mu.Lock()
	in, ok := r.running[pod.UID]
	r.mu.Unlock()
	if !ok {
		ip := r.ips.get()
		stop, err := r.workload.Start(ctx, pod, ip)
		if err != nil {
			r.ips.put(ip)
			return fmt.Errorf("starting pod %s: %w", key, err)
		}
		in = &instance{ip: ip, stop: stop}
		r.mu.Lock()
		r.running[pod.UID] = in
		r.mu.Unlock()
	}
	if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP == in.ip {
		return nil
	}
	return r.reportRunning(ctx, pod, in.ip)
}

func (r *Runner) bind(ctx context.Context, pod *corev1.Pod) error {
	err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.bindTo},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (r *Runner) reportRunning(ctx context.Context, pod *corev1.Pod, ip string) error {
	now := metav1.Now()
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.HostIP = "127.0.0.1"
	p.Status.StartTime = &now
	p.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := r.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// reportNotReady sets the pod's Ready and ContainersReady conditions to
// False with a patch of its status, which needs no resourceVersion and so
// never conflicts with the deletion that caused it.
func (r *Runner) reportNotReady(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	var conds []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		conds = append(conds, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodTerminating", LastTransitionTime: now})
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
	if err != nil {
		return err
	}
	_, err = r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reporting pod %s/%s not ready: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func (r *Runner) isRunning(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[uid]
	return ok
}

// stop ends the workload of pod uid, if it runs.
func (r *Runner) stop(uid types.UID) {
	r.mu.Lock()
	in, ok := r.running[uid]
	delete(r.running, uid)
	r.mu.Unlock()
	if ok {
		in.stop()
		r.ips.put(in.ip)
	}
}

// stopGone stops workloads whose pods no longer exist.
func (r *Runner) stopGone() {
	live := map[types.UID]bool{}
	for _, o := range r.store.List() {
		live[o.(*corev1.Pod).UID] = true
	}
	r.mu.Lock()
	var gone []types.UID
	for uid := range r.running {
		if !live[uid] {
			gone = append(gone, uid)
		}
	}
	r.mu.Unlock()
	for _, uid := range gone {
		r.stop(uid)
	}
}

// Running returns the loopback IPs of the pods whose workloads run, by pod
// UID.
func (r *Runner) Running() map[types.UID]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[types.UID]string, len(r.running))
	for uid, in := range r.running {
		out[uid] = in.ip
	}
	return out
}

// WaitRunning polls until exactly n pods of namespace matching the label
// selector sel are Running, Ready and not being deleted, and returns them.
func WaitRunning(ctx context.Context, client kubernetes.Interface, namespace, sel string, n int, timeout time.Duration) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel, FieldSelector: fields.OneTermEqualSelector("status.phase", "Running").String()})
		if err != nil {
			return false, nil
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && Ready(&p) {
				pods = append(pods, p)
			}
		}
		return len(pods) == n, nil
	})
	if err != nil {
		return pods, fmt.Errorf("%d of %d pods %q running and ready: %w", len(pods), n, sel, err)
	}
	return pods, nil
}

// Ready reports whether the pod's Ready condition is true.
func Ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ipPool hands out loopback addresses 127.block.1.1, 127.block.1.2, ...,
// reusing returned ones last.
type ipPool struct {
	mu   sync.Mutex
	next uint32
	free []string
}

func newIPPool(block byte) *ipPool { return &ipPool{next: 127<<24 | uint32(block)<<16 | 1<<8 | 1} }

func (p *ipPool) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) > 64 { // reuse only after a while, so old connections die first
		ip := p.free[0]
		p.free = p.free[1:]
		return ip
	}
	for p.next&0xff == 0 || p.next&0xff == 0xff {
		p.next++
	}
	ip := net.IPv4(byte(p.next>>24), byte(p.next>>16), byte(p.next>>8), byte(p.next)).String()
	p.next++
	return ip
}

func (p *ipPool) put(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, ip)
}
