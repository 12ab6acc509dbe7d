package router

import (
	"context"
	"net"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// source keeps one backend's pool filled: fixed addresses, or the ready
// endpoints of a Service's EndpointSlices, or the ready pods of a
// selector, each watched by an informer that lists only what it needs.
type source struct {
	backend Backend
	pool    *Pool

	mu      sync.Mutex
	cancel  context.CancelFunc
	hasSync cache.InformerSynced
}

func newSource(b *Backend, pool *Pool) *source {
	s := &source{backend: *b, pool: pool}
	if len(b.Endpoints) > 0 {
		pool.Set(b.Endpoints)
	}
	return s
}

// synced says whether the source has listed once.
func (s *source) synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.backend.Endpoints) > 0 {
		return true
	}
	return s.hasSync != nil && s.hasSync()
}

// start begins watching (a no-op for fixed addresses). Without a client a
// watched source stays empty and never syncs.
func (s *source) start(ctx context.Context, client kubernetes.Interface) {
	if len(s.backend.Endpoints) > 0 || client == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel = cancel
	var informer cache.SharedIndexInformer
	var resync func()
	switch {
	case s.backend.Service != nil:
		svc := s.backend.Service
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(svc.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = labels.Set{discoveryv1.LabelServiceName: svc.Name}.String()
			}))
		inf := f.Discovery().V1().EndpointSlices()
		informer = inf.Informer()
		resync = func() {
			slices, _ := inf.Lister().EndpointSlices(svc.Namespace).List(labels.Everything())
			s.pool.Set(sliceAddrs(slices, svc.Port))
		}
		defer f.Start(ctx.Done())
	case s.backend.Pods != nil:
		ps := s.backend.Pods
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ps.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = labels.Set(ps.Selector).String()
			}))
		inf := f.Core().V1().Pods()
		informer = inf.Informer()
		resync = func() {
			pods, _ := inf.Lister().Pods(ps.Namespace).List(labels.Everything())
			s.pool.Set(podAddrs(pods, ps.Port))
		}
		defer f.Start(ctx.Done())
	default:
		cancel()
		return
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { resync() },
		UpdateFunc: func(any, any) { resync() },
		DeleteFunc: func(any) { resync() },
	})
	s.hasSync = informer.HasSynced
}

func (s *source) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	s.hasSync = nil
}

// sliceAddrs are the ready endpoints' addresses on the named port (or the
// only port). An endpoint is ready only when its ready condition is true:
// a terminating endpoint's is false, so it leaves at once.
func sliceAddrs(slices []*discoveryv1.EndpointSlice, portName string) []string {
	var out []string
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 && sl.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port := int32(-1)
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			if (portName == "" && len(sl.Ports) == 1) || (p.Name != nil && *p.Name == portName) {
				port = *p.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			// A nil ready condition means ready (the API's "unknown").
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	return out
}

// podAddrs are the addresses of pods that are running, ready and not being
// deleted.
func podAddrs(pods []*corev1.Pod, port int32) []string {
	var out []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		out = append(out, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port))))
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
