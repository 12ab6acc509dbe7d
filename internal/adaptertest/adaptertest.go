// Package adaptertest runs the gpufleet metrics adapter against a local
// control plane for tests, benchmarks and the demo: its flags, its
// registration as an aggregated API (APIService), and readiness checks.
package adaptertest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"
	emclient "k8s.io/metrics/pkg/client/external_metrics"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Namespace and ServiceName locate the Service the APIServices point at.
const (
	Namespace   = "kube-system"
	ServiceName = "gpufleet-metrics-adapter"
)

// groupVersions the adapter serves.
var groupVersions = []struct{ group, version string }{
	{"custom.metrics.k8s.io", "v1beta1"},
	{"custom.metrics.k8s.io", "v1beta2"},
	{"external.metrics.k8s.io", "v1beta1"},
}

// Flags are the metrics-adapter flags to serve on 127.0.0.1:port for the
// cluster c, with delegated authentication and authorization; dir holds its
// self-signed serving certificate.
func Flags(c *localcluster.Cluster, port int, dir string) []string {
	return []string{
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(dir, "adapter-certs"),
		"--lister-kubeconfig=" + c.KubeconfigPath,
		"--authentication-kubeconfig=" + c.KubeconfigPath,
		"--authorization-kubeconfig=" + c.KubeconfigPath,
	}
}

// Register points the metrics APIs at an adapter listening on
// localhost:port (an ExternalName Service: the apiserver refuses loopback
// Endpoints) and waits until every APIService is Available. Calling it again
// with another port moves the APIs to that adapter.
func Register(ctx context.Context, cfg *rest.Config, port int, timeout time.Duration) error {
	if err := register(ctx, cfg, port, true); err != nil {
		return err
	}
	return WaitAvailable(ctx, cfg, timeout)
}

// RegisterVerified is Register for an adapter that keeps its serving
// certificate in a Secret (--serving-cert-secret=<Namespace>/<name>
// --serving-cert-service=<ServiceName>): kube-apiserver verifies it against
// the CA bundle the adapter injects. It does not wait for Available.
func RegisterVerified(ctx context.Context, cfg *rest.Config, port int) error {
	return register(ctx, cfg, port, false)
}

func register(ctx context.Context, cfg *rest.Config, port int, insecure bool) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}
	if err := upsertService(ctx, client, svc); err != nil {
		return fmt.Errorf("creating the adapter's Service: %w", err)
	}
	p := int32(port)
	for _, gv := range groupVersions {
		as := &apiregv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: gv.version + "." + gv.group},
			Spec: apiregv1.APIServiceSpec{
				Service:               &apiregv1.ServiceReference{Namespace: Namespace, Name: ServiceName, Port: &p},
				Group:                 gv.group,
				Version:               gv.version,
				InsecureSkipTLSVerify: insecure, // the adapter's self-signed certificate, on loopback
				GroupPriorityMinimum:  100,
				VersionPriority:       100,
			},
		}
		if gv.version == "v1beta2" {
			as.Spec.VersionPriority = 200
		}
		// The availability controller writes status meanwhile: retry conflicts.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := agg.ApiregistrationV1().APIServices().Get(ctx, as.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				_, err = agg.ApiregistrationV1().APIServices().Create(ctx, as, metav1.CreateOptions{})
			case err == nil:
				if !insecure {
					as.Spec.CABundle = cur.Spec.CABundle // the adapter's
				}
				cur.Spec = as.Spec
				_, err = agg.ApiregistrationV1().APIServices().Update(ctx, cur, metav1.UpdateOptions{})
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("registering APIService %s: %w", as.Name, err)
		}
	}
	return nil
}

// WaitAvailable waits until every adapter APIService reports Available.
func WaitAvailable(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	agg, err := aggregator.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, gv := range groupVersions {
			as, err := agg.ApiregistrationV1().APIServices().Get(ctx, gv.version+"."+gv.group, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			ok := false
			for _, c := range as.Status.Conditions {
				if c.Type == apiregv1.Available {
					ok = c.Status == apiregv1.ConditionTrue
					last = fmt.Sprintf("%s: %s %s", as.Name, c.Reason, c.Message)
				}
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("metrics APIServices not Available after %v (last: %s): %w", timeout, last, err)
	}
	return nil
}

func upsertService(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return upsertServiceOnce(ctx, client, svc) })
}

func upsertServiceOnce(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) error {
	cur, err := client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Spec.Ports = svc.Spec.Ports
	cur.Spec.ExternalName = svc.Spec.ExternalName
	_, err = client.CoreV1().Services(svc.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// MetricsClients are the custom and external metrics clients the HPA
// controller itself uses, talking to kube-apiserver.
func MetricsClients(cfg *rest.Config) (cmclient.CustomMetricsClient, emclient.ExternalMetricsClient, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(dc))
	em, err := emclient.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cmclient.NewForConfig(cfg, mapper, cmclient.NewAvailableAPIsGetter(dc)), em, nil
}
