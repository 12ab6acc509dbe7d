package gpupack

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// EventsToRegister lists the events that can make a pod this plugin rejected
// schedulable: a GPU pod leaving a node, and a node arriving or changing its
// GPU capacity, its labels (the model) or annotations (GPU health).
func (p *GPUPack) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: p.hintPodDeleted},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable | fwk.UpdateNodeLabel | fwk.UpdateNodeAnnotation}, QueueingHintFn: p.hintNodeChanged},
	}, nil
}

// hintPodDeleted requeues when the deleted pod held GPUs.
func (p *GPUPack) hintPodDeleted(logger klog.Logger, pod *corev1.Pod, oldObj, _ any) (fwk.QueueingHint, error) {
	deleted, ok := oldObj.(*corev1.Pod)
	if !ok {
		return fwk.Queue, nil // unexpected object: requeue rather than strand the pod
	}
	r, err := RequestFromPod(deleted)
	if err != nil || r.WantsGPU() || deleted.Annotations[names.AnnotationGPUIndices] != "" {
		logger.V(5).Info("GPU pod deleted; requeueing", "pod", klog.KObj(pod), "deleted", klog.KObj(deleted))
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// hintNodeChanged requeues when the node now has enough GPUs of a model the
// pod accepts.
func (p *GPUPack) hintNodeChanged(logger klog.Logger, pod *corev1.Pod, _, newObj any) (fwk.QueueingHint, error) {
	node, ok := newObj.(*corev1.Node)
	if !ok {
		return fwk.Queue, nil
	}
	r, err := RequestFromPod(pod)
	if err != nil {
		return fwk.QueueSkip, nil // only a change to the pod itself can help
	}
	gpus := node.Status.Allocatable[names.ResourceGPU]
	milli := node.Status.Allocatable[names.ResourceGPUMilli]
	count := gpus.Value()
	if count == 0 {
		count = milli.Value() / MilliPerGPU
	}
	if count < int64(r.Count()) {
		return fwk.QueueSkip, nil
	}
	model, known := gpumodel.FromNodeLabels(node.Labels)
	if !r.AllowsModel(model, known) {
		return fwk.QueueSkip, nil
	}
	logger.V(5).Info("GPU node fits; requeueing", "pod", klog.KObj(pod), "node", klog.KObj(node))
	return fwk.Queue, nil
}
