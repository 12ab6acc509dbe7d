package stack

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/gpufleet/gpufleet/pkg/cost"
)

// NodeUtilization is the node's gpu_utilization (mean over its GPUs, 0..1)
// through the custom metrics API, as the HPA would read it, or NaN if the
// adapter has no current value.
func (s *Stack) NodeUtilization(node string) float64 {
	v, err := s.Metrics.RootScopedMetrics().GetForObject(schema.GroupKind{Kind: "Node"}, node, "gpu_utilization", labels.Everything())
	if err != nil {
		return math.NaN()
	}
	return v.Value.AsApproximateFloat64()
}

// ServedRPS is the model Deployment's requests_per_second (the sum over its
// pods) through the custom metrics API, or NaN if the adapter has none.
func (s *Stack) ServedRPS() float64 {
	v, err := s.Metrics.NamespacedMetrics(Namespace).GetForObject(schema.GroupKind{Group: "apps", Kind: "Deployment"}, AppName, "requests_per_second", labels.Everything())
	if err != nil {
		return math.NaN()
	}
	return v.Value.AsApproximateFloat64()
}

// Replicas returns the model Deployment's desired replicas (the HPA's
// decision) and its ready replicas.
func (s *Stack) Replicas(ctx context.Context) (desired, ready int32, err error) {
	d, err := s.Client.AppsV1().Deployments(Namespace).Get(ctx, AppName, metav1.GetOptions{})
	if err != nil {
		return 0, 0, err
	}
	return *d.Spec.Replicas, d.Status.ReadyReplicas, nil
}

// ModelPods lists the model's pods, terminating ones included.
func (s *Stack) ModelPods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := s.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + AppName})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// AdapterURL is the metrics adapter's base URL (its secure port, serving
// a self-signed certificate): on loopback, or an adapter pod's address on
// the real node's bridge.
func (s *Stack) AdapterURL() string { return s.adapterURL }

// CostUsage reads the GPU time the adapter accounted over [from, to) from
// its cost report endpoint, with the cluster admin's credentials.
func (s *Stack) CostUsage(ctx context.Context, from, to time.Time) (cost.Usage, error) {
	cfg := rest.CopyConfig(s.Cluster.Config)
	cfg.Insecure = true // the adapter's self-signed serving certificate, on loopback
	cfg.CAFile, cfg.CAData = "", nil
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return cost.Usage{}, fmt.Errorf("a transport with the admin credentials: %w", err)
	}
	client, err := cost.NewReportClient(s.AdapterURL(), &http.Client{Transport: rt, Timeout: 30 * time.Second})
	if err != nil {
		return cost.Usage{}, err
	}
	return client.Usage(ctx, from, to)
}
