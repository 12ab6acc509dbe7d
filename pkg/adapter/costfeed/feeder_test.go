package costfeed

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/cost"
)

// fakeSource answers busy GPUs and request rates per pod name.
type fakeSource struct{ busy, rps map[string]float64 }

func (f fakeSource) PodValues(_ context.Context, m source.Metric, pods []source.Pod, _ labels.Selector) ([]source.Sample, []bool, error) {
	vals := make([]source.Sample, len(pods))
	oks := make([]bool, len(pods))
	table := f.rps
	if m.Name == busyGPUs.Name {
		table = f.busy
	}
	for i, p := range pods {
		vals[i].Value, oks[i] = table[p.Name]
	}
	return vals, oks, nil
}

func (fakeSource) NodeValues(context.Context, source.Metric, []string, labels.Selector) ([]source.Sample, []bool, error) {
	return nil, nil, nil
}

func TestSnapshot(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(time.Hour))
	gpuPod := func(name, node string, gpus, milli string, owner *metav1.OwnerReference) *corev1.Pod {
		rl := corev1.ResourceList{}
		if gpus != "" {
			rl["nvidia.com/gpu"] = resource.MustParse(gpus)
		}
		if milli != "" {
			rl["gpufleet.io/gpu-milli"] = resource.MustParse(milli)
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name, UID: types.UID("uid-" + name)},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: rl}}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start},
		}
		if owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		return p
	}
	ctrl := func(kind, name string) *metav1.OwnerReference {
		return &metav1.OwnerReference{Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: new(true)}
	}
	done := gpuPod("train-x", "spot-1", "2", "", ctrl("Job", "train"))
	done.Status.Phase = corev1.PodSucceeded
	done.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: end}}}}
	pending := gpuPod("pending", "", "1", "", nil)
	pending.Status.StartTime = nil
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "bert-5f", UID: types.UID("uid-" + "bert-5f"),
		OwnerReferences: []metav1.OwnerReference{*ctrl("Deployment", "bert")}}}
	objs := []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "v100-1", Labels: map[string]string{"nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB"}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8"), "cpu": resource.MustParse("64")}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "spot-1", Labels: map[string]string{"nvidia.com/gpu.product": "Tesla-T4", "karpenter.sh/capacity-type": "spot"}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("4")}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cpu-1"}},
		rs,
		gpuPod("bert-5f-a", "v100-1", "", "300", ctrl("ReplicaSet", "bert-5f")),
		gpuPod("bare", "v100-1", "1", "", nil),
		gpuPod("cpu-only", "v100-1", "", "", nil),
		done, pending,
	}
	c, err := cluster.New(fake.NewClientset(objs...))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := start.Add(2 * time.Hour)
	f := &Feeder{Cache: c, Source: fakeSource{
		busy: map[string]float64{"bert-5f-a": 0.25, "train-x": 1.5},
		rps:  map[string]float64{"bert-5f-a": 12},
	}, Now: func() time.Time { return now }}
	got := f.Snapshot(t.Context())
	want := cost.Snapshot{
		Time: now,
		Nodes: []cost.NodeGPUs{
			{Node: "spot-1", Model: "T4", Spot: true, GPUs: 4},
			{Node: "v100-1", Model: "V100M16", GPUs: 8},
		},
		Pods: []cost.PodUsage{
			{Namespace: "ml", Name: "bare", WorkloadKind: "Pod", Workload: "bare", Node: "v100-1", Model: "V100M16", Start: start.Time, AllocatedGPUs: 1},
			{Namespace: "ml", Name: "bert-5f-a", WorkloadKind: "Deployment", Workload: "bert", Node: "v100-1", Model: "V100M16", Start: start.Time,
				AllocatedGPUs: 0.3, UsedGPUs: 0.25, UsedKnown: true, RequestsPerSecond: 12, RPSKnown: true},
			// Finished: billed until it ended, its use no longer current.
			{Namespace: "ml", Name: "train-x", WorkloadKind: "Job", Workload: "train", Node: "spot-1", Model: "T4", Spot: true, Start: start.Time, End: end.Time,
				AllocatedGPUs: 2, UsedGPUs: 1.5},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(cost.PodUsage{}, "UID"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
}
