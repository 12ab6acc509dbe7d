package localcluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// Names the simulated nodes carry (DESIGN.md), re-exported for tests.
const (
	ResourceGPU      = names.ResourceGPU
	ResourceGPUMilli = names.ResourceGPUMilli

	LabelGPUProduct   = names.LabelGPUProduct
	LabelGPUCount     = names.LabelGPUCount
	LabelGPUMemoryMiB = names.LabelGPUMemoryMiB
	LabelGPUArch      = names.LabelGPUArch
	LabelSimulated    = names.LabelSimulated
)

// GPUNode describes a simulated GPU node: a Node object with GPU capacity and
// the labels the gpu-agent and NVIDIA GPU feature discovery would write, but
// no kubelet. It is test and demo infrastructure, marked with
// gpufleet.io/simulated=true.
type GPUNode struct {
	Name string
	// Model is a gpumodel short name. Default "V100M16".
	Model string
	// GPUs is the number of GPUs. Default 8 (a DGX-1).
	GPUs int
	// CPU, Memory and Pods are the node's capacity. Defaults: 64 cores,
	// 256Gi, 110 pods.
	CPU, Memory string
	Pods        int
	// Labels are added to the generated ones (and override them).
	Labels map[string]string
	Taints []corev1.Taint
}

// Object returns the Node, including its status, or an error for an unknown
// model or a malformed quantity.
func (g GPUNode) Object() (*corev1.Node, error) {
	if g.Name == "" {
		return nil, fmt.Errorf("simulated GPU node needs a name")
	}
	if g.Model == "" {
		g.Model = "V100M16"
	}
	if g.GPUs == 0 {
		g.GPUs = 8
	}
	if g.GPUs < 0 {
		return nil, fmt.Errorf("node %s: GPU count %d is negative", g.Name, g.GPUs)
	}
	model, err := gpumodel.Lookup(g.Model)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", g.Name, err)
	}
	capacity := corev1.ResourceList{}
	for name, s := range map[corev1.ResourceName]string{corev1.ResourceCPU: orDefault(g.CPU, "64"), corev1.ResourceMemory: orDefault(g.Memory, "256Gi")} {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s %q: %w", g.Name, name, s, err)
		}
		capacity[name] = q
	}
	pods := g.Pods
	if pods == 0 {
		pods = 110
	}
	capacity[corev1.ResourcePods] = *resource.NewQuantity(int64(pods), resource.DecimalSI)
	capacity[ResourceGPU] = *resource.NewQuantity(int64(g.GPUs), resource.DecimalSI)
	capacity[ResourceGPUMilli] = *resource.NewQuantity(int64(g.GPUs)*1000, resource.DecimalSI)

	labels := map[string]string{
		corev1.LabelHostname:     g.Name,
		corev1.LabelOSStable:     "linux",
		corev1.LabelArchStable:   "amd64",
		LabelSimulated:           "true",
		LabelGPUProduct:          model.LabelProduct(),
		LabelGPUCount:            strconv.Itoa(g.GPUs),
		LabelGPUMemoryMiB:        strconv.FormatInt(model.MemoryMiB, 10),
		LabelGPUArch:             model.Arch,
		names.LabelNVIDIAProduct: model.LabelProduct(),
		names.LabelNVIDIACount:   strconv.Itoa(g.GPUs),
		names.LabelNVIDIAMemory:  strconv.FormatInt(model.MemoryMiB, 10),
		names.LabelNVIDIAFamily:  model.Arch,
		names.LabelAccelerator:   model.Accelerator,
	}
	for k, v := range g.Labels {
		labels[k] = v
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: g.Taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "SimulatedNode",
				Message: "simulated by gpufleet: no kubelet", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: g.Name},
			},
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.37.2"},
		},
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// CreateGPUNode creates the simulated node, sets its status (capacity,
// Ready) and removes the not-ready taint that admission adds to new nodes,
// then returns the node as the API server has it: schedulable.
func CreateGPUNode(ctx context.Context, client kubernetes.Interface, g GPUNode) (*corev1.Node, error) {
	want, err := g.Object()
	if err != nil {
		return nil, err
	}
	created, err := client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating node %s: %w", g.Name, err)
	}
	created.Status = want.Status
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("setting status of node %s: %w", g.Name, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, g.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = withoutTaint(n.Spec.Taints, corev1.TaintNodeNotReady)
		_, err = client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("removing the not-ready taint from node %s: %w", g.Name, err)
	}
	var node *corev1.Node
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, g.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		return NodeReady(n) && len(withoutTaint(n.Spec.Taints, corev1.TaintNodeNotReady)) == len(n.Spec.Taints), nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for node %s to be Ready and schedulable: %w", g.Name, err)
	}
	return node, nil
}

func withoutTaint(taints []corev1.Taint, key string) []corev1.Taint {
	out := taints[:0:0]
	for _, t := range taints {
		if t.Key != key {
			out = append(out, t)
		}
	}
	return out
}
