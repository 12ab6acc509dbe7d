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

	"github.com/gpufleet/gpufleet/pkg/names"
)

// PreBindPreFlight says PreBind has work only for pods holding GPUs.
func (p *GPUPack) PreBindPreFlight(_ context.Context, state fwk.CycleState, pod *corev1.Pod, _ string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	s, st := readState(state)
	if st != nil {
		return nil, st
	}
	if !s.req.WantsGPU() {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return &fwk.PreBindPreFlightResult{AllowParallel: true}, nil
}

// PreBind writes the reserved GPUs to the pod's gpufleet.io/gpu-indices
// annotation, so the node (and a restarted scheduler) knows them before the
// pod is bound.
func (p *GPUPack) PreBind(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	gpus, ok := p.ledger.Reserved(pod.UID)
	if !ok {
		return fwk.AsStatus(fmt.Errorf("%s: pod %s has no GPU reservation on node %s", Name, klog.KObj(pod), nodeName))
	}
	value := FormatIndices(gpus)
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
