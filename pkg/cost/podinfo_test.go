package cost

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

func TestPodUsageFromPod(t *testing.T) {
	start := metav1.NewTime(t0)
	container := func(res corev1.ResourceName, q string) corev1.Container {
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{res: resource.MustParse(q)}, Limits: corev1.ResourceList{res: resource.MustParse(q)}}}
	}
	share := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "a", UID: "u", Annotations: map[string]string{names.AnnotationGPUIndices: "2"}},
		Spec:       corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{container(names.ResourceGPUMilli, "300")}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start},
	}
	want := PodUsage{Namespace: "ml", Name: "a", UID: "u", WorkloadKind: KindDeployment, Workload: "w", Node: "n",
		Start: t0, AllocatedGPUs: 0.3, GPUIndices: []int{2}}
	if diff := cmp.Diff(want, PodUsageFromPod(share, KindDeployment, "w")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	finished := metav1.NewTime(t0.Add(time.Hour))
	job := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "j", Annotations: map[string]string{names.AnnotationGPUIndices: "0, x"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{container(names.ResourceGPU, "1")},
			Containers:     []corev1.Container{container(names.ResourceGPU, "2")},
		},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
			{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: finished}}},
		}},
	}
	got := PodUsageFromPod(job, KindJob, "j")
	if got.AllocatedGPUs != 2 || got.GPUIndices != nil || !got.End.Equal(finished.Time) {
		t.Errorf("job: allocated %v (want 2), indices %v (want nil, malformed), end %v (want %v)", got.AllocatedGPUs, got.GPUIndices, got.End, finished.Time)
	}
}

func TestSpotFromNodeLabels(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{nil, false},
		{map[string]string{"karpenter.sh/capacity-type": "spot"}, true},
		{map[string]string{"karpenter.sh/capacity-type": "on-demand"}, false},
		{map[string]string{"eks.amazonaws.com/capacityType": "SPOT"}, true},
		{map[string]string{"cloud.google.com/gke-spot": "true"}, true},
		{map[string]string{"cloud.google.com/gke-preemptible": "false"}, false},
		{map[string]string{"kubernetes.azure.com/scalesetpriority": "spot"}, true},
	} {
		if got := SpotFromNodeLabels(tc.labels); got != tc.want {
			t.Errorf("SpotFromNodeLabels(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}
