package deviceplugin

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// podBuilder builds test pods.
type podBuilder struct{ pod *corev1.Pod }

// created orders test pods: each pod is a second younger than the last.
var created = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

var createdMu sync.Mutex

func newPod(name string) *podBuilder {
	createdMu.Lock()
	created = created.Add(time.Second)
	ts := created
	createdMu.Unlock()
	return &podBuilder{pod: &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNamespace, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(ts),
		},
		Spec: corev1.PodSpec{NodeName: testNode},
	}}
}

// on annotates the pod with the GPUs gpufleet's scheduler chose.
func (b *podBuilder) on(indices string) *podBuilder {
	if b.pod.Annotations == nil {
		b.pod.Annotations = map[string]string{}
	}
	b.pod.Annotations[names.AnnotationGPUIndices] = indices
	return b
}

func (b *podBuilder) createdAt(ts time.Time) *podBuilder {
	b.pod.CreationTimestamp = metav1.NewTime(ts)
	return b
}

// app adds an app container requesting n of resource (none: n == 0).
func (b *podBuilder) app(name, resource string, n int64) *podBuilder {
	b.pod.Spec.Containers = append(b.pod.Spec.Containers, gpuContainer(name, resource, n))
	return b
}

// init adds a plain init container requesting n of resource.
func (b *podBuilder) init(name, resource string, n int64) *podBuilder {
	b.pod.Spec.InitContainers = append(b.pod.Spec.InitContainers, gpuContainer(name, resource, n))
	return b
}

// sidecar adds an init container with restartPolicy Always.
func (b *podBuilder) sidecar(name, resource string, n int64) *podBuilder {
	c := gpuContainer(name, resource, n)
	always := corev1.ContainerRestartPolicyAlways
	c.RestartPolicy = &always
	b.pod.Spec.InitContainers = append(b.pod.Spec.InitContainers, c)
	return b
}

func (b *podBuilder) obj() *corev1.Pod { return b.pod }

func gpuContainer(name, res string, n int64) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/ml/" + name + ":1"}
	if n > 0 {
		q := *resource.NewQuantity(n, resource.DecimalSI)
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceName(res): q}
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceName(res): q}
	}
	return c
}
