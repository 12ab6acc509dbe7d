package gpupack

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// The pod's GPUs reach the API in one of two ways. When GPUPack is the
// profile's first Bind plugin (the recommended profile), Bind sends them as
// annotations of the Binding: the API server sets the node and the
// annotation in one write, so a bound GPU pod always carries its indices and
// scheduling costs one API write per pod, as with the default binder.
// Otherwise PreBind patches the annotation before another plugin binds.

// bindsItself says whether the framework calls GPUPack's Bind first.
func (p *GPUPack) bindsItself() bool {
	p.bindOnce.Do(func() {
		lister, ok := p.handle.(interface{ ListPlugins() *schedconfig.Plugins })
		if !ok {
			return
		}
		if pl := lister.ListPlugins(); pl != nil && len(pl.Bind.Enabled) > 0 && pl.Bind.Enabled[0].Name == Name {
			p.binds = true
		}
	})
	return p.binds
}

// indicesFor returns the pod's reserved GPUs as the annotation holds them.
func (p *GPUPack) indicesFor(pod *corev1.Pod, nodeName string) (string, *fwk.Status) {
	gpus, ok := p.ledger.Reserved(pod.UID)
	if !ok {
		return "", fwk.AsStatus(fmt.Errorf("%s: pod %s has no GPU reservation on node %s", Name, klog.KObj(pod), nodeName))
	}
	return FormatIndices(gpus), nil
}

// PreBindPreFlight says PreBind has work only for GPU pods that GPUPack's
// own Bind will not bind.
func (p *GPUPack) PreBindPreFlight(_ context.Context, state fwk.CycleState, pod *corev1.Pod, _ string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	s, st := readState(state)
	if st != nil {
		return nil, st
	}
	if !s.req.WantsGPU() || p.bindsItself() {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return &fwk.PreBindPreFlightResult{AllowParallel: true}, nil
}

// PreBind writes the reserved GPUs to the pod's gpufleet.io/gpu-indices
// annotation before another plugin binds it.
func (p *GPUPack) PreBind(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	value, st := p.indicesFor(pod, nodeName)
	if st != nil {
		return st
	}
	if pod.Annotations[names.AnnotationGPUIndices] == value {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{names.AnnotationGPUIndices: value},
		// The UID precondition keeps a patch from landing on a new pod of
		// the same name.
		"uid": pod.UID,
	}})
	if err != nil {
		return fwk.AsStatus(err)
	}
	if _, err := p.handle.ClientSet().CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: writing %s=%s on pod %s: %w", Name, names.AnnotationGPUIndices, value, klog.KObj(pod), err))
	}
	klog.FromContext(ctx).V(4).Info("Wrote GPU indices", "pod", klog.KObj(pod), "node", nodeName, "gpus", value)
	return nil
}

// Bind binds a GPU pod with its gpufleet.io/gpu-indices annotation in the
// same request; other pods are left to the next binder.
func (p *GPUPack) Bind(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	if !s.req.WantsGPU() {
		return fwk.NewStatus(fwk.Skip)
	}
	value, st := p.indicesFor(pod, nodeName)
	if st != nil {
		return st
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			Annotations: map[string]string{names.AnnotationGPUIndices: value}},
		Target: corev1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	if c := p.handle.APICacher(); c != nil {
		onFinish, err := c.BindPod(binding)
		if err == nil {
			err = c.WaitOnFinish(ctx, onFinish)
		}
		if err != nil {
			return fwk.AsStatus(fmt.Errorf("%s: binding pod %s to %s with GPUs %s: %w", Name, klog.KObj(pod), nodeName, value, err))
		}
		return nil
	}
	if err := p.handle.ClientSet().CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: binding pod %s to %s with GPUs %s: %w", Name, klog.KObj(pod), nodeName, value, err))
	}
	klog.FromContext(ctx).V(3).Info("Bound pod with its GPUs", "pod", klog.KObj(pod), "node", nodeName, "gpus", value)
	return nil
}
