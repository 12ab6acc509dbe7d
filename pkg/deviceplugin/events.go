package deviceplugin

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Event reasons the plugin posts on pods.
const (
	// ReasonGPUMismatch: a container's devices are not its annotated GPUs.
	ReasonGPUMismatch = "GPUMismatch"
	// ReasonGPUSteering: the annotated GPUs could not be had at admission.
	ReasonGPUSteering = "GPUAllocationFailed"
)

// eventComponent is the source of the plugin's Events.
const eventComponent = "gpufleet-device-plugin"

// warn posts a Warning Event on pod, best effort: a failure is logged.
func (p *Plugin) warn(ctx context.Context, pod *corev1.Pod, reason, msg string) {
	if p.cfg.Events == nil || pod == nil {
		return
	}
	now := metav1.NewTime(p.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		},
		Reason: reason, Message: msg, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: eventComponent, Host: p.cfg.NodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "gpufleet.io/" + eventComponent, ReportingInstance: p.cfg.NodeName,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.cfg.Events.CreateEvent(ctx, ev); err != nil {
		klog.FromContext(ctx).Error(err, "Posting event", "pod", klog.KObj(pod), "reason", reason)
	}
}
