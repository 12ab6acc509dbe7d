package router

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// TestNotReadyGetsNoNewRequest: once a pod's endpoint (or the pod itself)
// turns not ready, the router sends it nothing new, while it was sent
// requests before.
func TestNotReadyGetsNoNewRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend string
		object  func(p *fakePod, i int, ready bool) (create, update func(context.Context, kubernetes.Interface) error)
	}{{
		name:    "EndpointSlice",
		backend: `service: {name: model, port: http}`,
		object: func(p *fakePod, i int, ready bool) (func(context.Context, kubernetes.Interface) error, func(context.Context, kubernetes.Interface) error) {
			sl := endpointSlice(p, i, ready)
			return func(ctx context.Context, c kubernetes.Interface) error {
					_, err := c.DiscoveryV1().EndpointSlices("models").Create(ctx, sl, metav1.CreateOptions{})
					return err
				}, func(ctx context.Context, c kubernetes.Interface) error {
					_, err := c.DiscoveryV1().EndpointSlices("models").Update(ctx, sl, metav1.UpdateOptions{})
					return err
				}
		},
	}, {
		name:    "pods",
		backend: `pods: {selector: {app: model}, port: PORT}`,
		object: func(p *fakePod, i int, ready bool) (func(context.Context, kubernetes.Interface) error, func(context.Context, kubernetes.Interface) error) {
			pod := modelPod(p, i, ready)
			return func(ctx context.Context, c kubernetes.Interface) error {
					_, err := c.CoreV1().Pods("models").Create(ctx, pod, metav1.CreateOptions{})
					return err
				}, func(ctx context.Context, c kubernetes.Interface) error {
					_, err := c.CoreV1().Pods("models").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
					return err
				}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			client := fake.NewClientset()
			// The pods share an address; ports differ, so each pod needs
			// its own loopback address for the pods source (one port).
			a, b := newFakePod(t), newFakePod(t)
			backend := tc.backend
			if tc.name == "pods" {
				a = newFakePodAt(t, "127.0.0.2:0")
				_, port, _ := net.SplitHostPort(a.addr)
				b = newFakePodAt(t, "127.0.0.3:"+port)
				backend = fmt.Sprintf(`pods: {selector: {app: model}, port: %s}`, port)
			}
			for i, p := range []*fakePod{a, b} {
				create, _ := tc.object(p, i, true)
				if err := create(ctx, client); err != nil {
					t.Fatal(err)
				}
			}
			rules := "apiVersion: router.gpufleet.io/v1alpha1\nkind: RoutingRules\nbackends:\n- name: model\n  " + backend + "\nroutes:\n- name: all\n  backends: [{backend: model}]\n"
			r, base := newTestRouter(t, Config{Client: client, Policy: RoundRobin}, rules)
			pool := r.table.Load().routes[0].split.targets[0].pool
			poll(t, "both pods discovered", func() bool { return r.Ready() && len(pool.Endpoints()) == 2 })
			for range 10 {
				if code, _, _ := infer(t, base, "m", inferBody, nil); code != http.StatusOK {
					t.Fatalf("status %d", code)
				}
			}
			if a.served.Load() == 0 || b.served.Load() == 0 {
				t.Fatalf("round robin over two ready pods: served %d and %d", a.served.Load(), b.served.Load())
			}
			_, update := tc.object(a, 0, false)
			if err := update(ctx, client); err != nil {
				t.Fatal(err)
			}
			poll(t, "the not-ready pod removed", func() bool { return len(pool.Endpoints()) == 1 })
			before := a.served.Load()
			for range 20 {
				if code, _, _ := infer(t, base, "m", inferBody, nil); code != http.StatusOK {
					t.Fatalf("status %d", code)
				}
			}
			if a.served.Load() != before {
				t.Errorf("the not-ready pod got %d new requests, want 0", a.served.Load()-before)
			}
		})
	}
}

func endpointSlice(p *fakePod, i int, ready bool) *discoveryv1.EndpointSlice {
	host, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	name, pn := "http", int32(n)
	terminating := !ready
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("model-%d", i), Namespace: "models", Labels: map[string]string{discoveryv1.LabelServiceName: "model"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &pn}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Terminating: &terminating}}},
	}
}

func modelPod(p *fakePod, i int, ready bool) *corev1.Pod {
	host, _, _ := net.SplitHostPort(p.addr)
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("model-%d", i), Namespace: "models", Labels: map[string]string{"app": "model"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: host,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}
