package gpupack

import (
	"github.com/google/go-cmp/cmp/cmpopts"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// res is a container's requests: CPU in millicores, whole GPUs and a
// milli-GPU share (0 leaves a resource out).
func res(cpuMilli, gpus, milli int64) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpuMilli > 0 {
		l[corev1.ResourceCPU] = *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI)
	}
	if gpus > 0 {
		l[names.ResourceGPU] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	if milli > 0 {
		l[names.ResourceGPUMilli] = *resource.NewQuantity(milli, resource.DecimalSI)
	}
	return l
}

// container is a container requesting (and, as extended resources must,
// limited to) reqs.
func container(name string, reqs corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: reqs, Limits: reqs}}
}

// podOpt changes a pod built by newPod.
type podOpt func(*corev1.Pod)

// withAnnotation sets a pod annotation.
func withAnnotation(key, value string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[key] = value
	}
}

// withIndices sets the pod's gpufleet.io/gpu-indices annotation.
func withIndices(v string) podOpt { return withAnnotation(names.AnnotationGPUIndices, v) }

// withModels sets the pod's gpufleet.io/gpu-model annotation.
func withModels(v string) podOpt { return withAnnotation(names.AnnotationGPUModel, v) }

// withInit adds an init container; a restartable one is a sidecar.
func withInit(reqs corev1.ResourceList, sidecar bool) podOpt {
	return func(p *corev1.Pod) {
		c := container("init-"+strconv.Itoa(len(p.Spec.InitContainers)), reqs)
		if sidecar {
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

// withContainer adds an app container.
func withContainer(reqs corev1.ResourceList) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, container("c"+strconv.Itoa(len(p.Spec.Containers)), reqs))
	}
}

// newPod is a pod (UID = name) in namespace default with the given options.
func newPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// gpuPod is a pod with one container asking for cpuMilli, gpus and milli.
func gpuPod(name string, cpuMilli, gpus, milli int64, opts ...podOpt) *corev1.Pod {
	return newPod(name, append([]podOpt{withContainer(res(cpuMilli, gpus, milli))}, opts...)...)
}

// nodeOpt changes a node built by newK8sNode.
type nodeOpt func(*corev1.Node)

// withLabel sets a node label.
func withLabel(key, value string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[key] = value
	}
}

// withProduct sets the agent's GPU product label.
func withProduct(model string) nodeOpt { return withLabel(names.LabelGPUProduct, model) }

// withTopology sets the node's NVLink topology annotation.
func withTopology(v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[names.AnnotationGPUTopology] = v
	}
}

// withMilliAllocatable advertises the node's GPUs as gpufleet.io/gpu-milli
// instead of nvidia.com/gpu.
func withMilliAllocatable(milli int64) nodeOpt {
	return func(n *corev1.Node) {
		delete(n.Status.Allocatable, names.ResourceGPU)
		n.Status.Allocatable[names.ResourceGPUMilli] = *resource.NewQuantity(milli, resource.DecimalSI)
	}
}

// newK8sNode is a Node object with cpuMilli CPU and gpus nvidia.com/gpu
// allocatable.
func newK8sNode(name string, cpuMilli, gpus int64, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Allocatable: res(cpuMilli, gpus, 0)},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// newNodeInfo is the scheduler's view of node running pods.
func newNodeInfo(node *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(node)
	return ni
}

var _ fwk.NodeInfo = &framework.NodeInfo{}

// testLogger logs through t.
func testLogger(t *testing.T) klog.Logger {
	logger, _ := ktesting.NewTestContext(t)
	return logger
}

// gpuNode is a ledger node of model V100M16 with the given free milli-GPU per
// GPU and plenty of CPU.
func gpuNode(free ...int64) *Node {
	return &Node{Name: "n", Model: "V100M16", ModelKnown: true, Free: free, CPUFree: 64000}
}

// wholeGPU, share and cpuOnly are request shorthands.
func wholeGPU(n int) Request    { return Request{GPUs: n, CPU: 1000} }
func share(milli int64) Request { return Request{Milli: milli, CPU: 1000} }
func cpuOnly(cpu int64) Request { return Request{CPU: cpu} }

// dgx1Topology is the NVLink topology of an NVIDIA DGX-1 with V100s (the
// hybrid cube-mesh of `nvidia-smi topo -m`): two fully connected quads,
// 0-3 and 4-7, joined by links i <-> i+4; every GPU has six NVLinks.
const dgx1Topology = "0-1:1,0-2:1,0-3:2,0-4:2,1-2:2,1-3:1,1-5:2,2-3:2,2-6:1,3-7:1,4-5:1,4-6:1,4-7:2,5-6:2,5-7:1,6-7:2"

// dgx1Links is dgx1Topology as a link matrix.
func dgx1Links(t *testing.T) [][]int {
	t.Helper()
	links, err := ParseTopology(dgx1Topology, 8)
	if err != nil {
		t.Fatalf("ParseTopology(DGX-1): %v", err)
	}
	return links
}

// ignoreKinds leaves the pod-kind counts out of ledger comparisons (tested
// on their own).
var ignoreKinds = cmpopts.IgnoreFields(Node{}, "Kinds")
