package loadgen

import (
	"context"
	"errors"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// FollowPods keeps g's targets equal to the URLs urls gives for every pod of
// namespace matching the label selector that has an IP, is Ready and is not
// being deleted, as a Service's endpoints would (the local control plane's
// loopback pod IPs cannot be endpoints). It watches the pods, so a pod that
// starts terminating leaves the targets as soon as the API server says so,
// before its workload stops. It returns once the first list is applied;
// following goes on until ctx ends.
func (g *Generator) FollowPods(ctx context.Context, client kubernetes.Interface, namespace, selector string, urls func(*corev1.Pod) []string) error {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Pods().Informer()
	store := inf.GetStore()
	update := func() {
		var pods []*corev1.Pod
		for _, o := range store.List() {
			if p := o.(*corev1.Pod); serving(p) {
				pods = append(pods, p)
			}
		}
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		var targets []string
		for _, p := range pods {
			targets = append(targets, urls(p)...)
		}
		g.SetTargets(targets)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { update() },
		UpdateFunc: func(any, any) { update() },
		DeleteFunc: func(any) { update() },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return errors.New("following pods: the pod list never synced")
	}
	update()
	go func() {
		<-ctx.Done()
		f.Shutdown()
	}()
	return nil
}

// serving reports whether a pod should get requests.
func serving(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
