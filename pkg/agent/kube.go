package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
)

// NodeClient reads and patches one Node.
type NodeClient interface {
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
	PatchNode(ctx context.Context, name string, pt types.PatchType, patch []byte) error
}

// KubeClient is all the agent asks of the API server: get and patch its
// Node, list and watch the pods on it, post Events on them. It is a REST client that knows only
// the core/v1 types: the generated clientset registers every API group and
// would more than double the agent's resident memory.
type KubeClient struct {
	rc *rest.RESTClient
}

var _ NodeClient = (*KubeClient)(nil)

// NewKubeClient returns a client for cfg.
func NewKubeClient(cfg *rest.Config) (*KubeClient, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = "gpufleet-gpu-agent"
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &KubeClient{rc: rc}, nil
}

// GetNode implements NodeClient.
func (k *KubeClient) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := k.rc.Get().Resource("nodes").Name(name).Do(ctx).Into(node)
	return node, err
}

// PatchNode implements NodeClient.
func (k *KubeClient) PatchNode(ctx context.Context, name string, pt types.PatchType, patch []byte) error {
	return k.rc.Patch(pt).Resource("nodes").Name(name).
		VersionedParams(&metav1.PatchOptions{FieldManager: "gpufleet-gpu-agent"}, metav1.ParameterCodec).
		Body(patch).Do(ctx).Error()
}

// Pods lists and watches pods in every namespace, for attribution.PodIndex.
func (k *KubeClient) Pods() attribution.PodSource { return pods{k.rc} }

type pods struct{ rc *rest.RESTClient }

func (p pods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	list := &corev1.PodList{}
	err := p.rc.Get().Resource("pods").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(list)
	return list, err
}

func (p pods) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return p.rc.Get().Resource("pods").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

// CreateEvent posts an Event (the device plugin reports GPU mismatches on
// pods with them).
func (k *KubeClient) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	return k.rc.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
}
