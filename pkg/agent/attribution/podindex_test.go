package attribution

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

const (
	uidTrain = "0b6a2c1e-3f4d-4e5a-8b7c-9d0e1f2a3b4c"
	uidInfer = "1c7b3d2f-405e-4f6b-9c8d-0e1f2a3b4c5d"
	cidA     = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	cidB     = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	cidC     = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	cidD     = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)

// fullPod is a pod as the API server returns it, with the fields the index
// keeps and a sample of those it drops.
func fullPod(ns, name, uid, node string, statuses ...corev1.ContainerStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       ns,
			Name:            name,
			UID:             types.UID(uid),
			ResourceVersion: "42",
			Labels:          map[string]string{"app": name},
			Annotations:     map[string]string{"gpufleet.io/gpu-model": "V100M16", "gpufleet.io/gpu-indices": "3"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name:  "main",
				Image: "registry.example/train:1",
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				},
			}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			PodIP:             "10.0.0.7",
			ContainerStatuses: statuses,
		},
	}
}

// kept is what stripPod keeps of fullPod's metadata, spec and phase.
func kept(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Annotations: map[string]string{"gpufleet.io/gpu-indices": "3"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{
			Name:      "main",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func running(name, id string) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name:        name,
		ContainerID: id,
		Image:       "registry.example/train:1",
		ImageID:     "sha256:0123",
		Ready:       true,
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}
}

func TestStripPod(t *testing.T) {
	withInit := fullPod("ml", "train", uidTrain, "node-a", running("main", "containerd://"+cidA))
	withInit.Status.InitContainerStatuses = []corev1.ContainerStatus{running("sidecar", "containerd://"+cidB)}
	withInit.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{running("debug", "containerd://"+cidC)}

	tests := []struct {
		name string
		in   any
		want any
	}{
		{
			name: "running containers keep name and ID",
			in:   fullPod("ml", "train", uidTrain, "node-a", running("main", "containerd://"+cidA), running("logger", "cri-o://"+cidB)),
			want: func() *corev1.Pod {
				p := kept("ml", "train", uidTrain)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "main", ContainerID: "containerd://" + cidA},
					{Name: "logger", ContainerID: "cri-o://" + cidB},
				}
				return p
			}(),
		},
		{
			name: "containers without an ID are dropped",
			in:   fullPod("ml", "pending", uidTrain, "node-a", corev1.ContainerStatus{Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}),
			want: kept("ml", "pending", uidTrain),
		},
		{
			name: "init and ephemeral containers are kept",
			in:   withInit,
			want: func() *corev1.Pod {
				p := kept("ml", "train", uidTrain)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", ContainerID: "containerd://" + cidA}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "sidecar", ContainerID: "containerd://" + cidB}}
				p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debug", ContainerID: "containerd://" + cidC}}
				return p
			}(),
		},
		{
			name: "other objects pass through",
			in:   &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
			want: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before any
			if p, ok := tc.in.(*corev1.Pod); ok {
				before = p.DeepCopy()
			}
			got, err := stripPod(tc.in)
			if err != nil {
				t.Fatalf("stripPod: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("stripPod (-want +got):\n%s", diff)
			}
			again, err := stripPod(got)
			if err != nil {
				t.Fatalf("stripPod of its own result: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("stripPod is not idempotent (-once +twice):\n%s", diff)
			}
			if before != nil {
				if diff := cmp.Diff(before, tc.in); diff != "" {
					t.Errorf("stripPod modified its argument (-before +after):\n%s", diff)
				}
			}
		})
	}
}

// fakePods is a fake clientset's pods, which cannot stream lists
// (watch-list): the reflector must fall back to list and watch.
type fakePods struct{ PodSource }

func (fakePods) IsWatchListSemanticsUnSupported() bool { return true }

// startIndex runs a PodIndex for node-a on client until the test ends, and
// waits for it to sync.
func startIndex(t *testing.T, client *fake.Clientset) *PodIndex {
	t.Helper()
	idx := NewPodIndex(fakePods{client.CoreV1().Pods("")}, "node-a")
	// Checked before Run starts: after, whether its first list has
	// finished yet is a race (this assertion once failed a clean CI run).
	if idx.HasSynced() {
		t.Error("HasSynced before the first list")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		idx.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	poll(t, "the pod index to sync", func() bool { return idx.HasSynced() })
	return idx
}

// poll waits for cond, failing the test after a deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestPodIndexByUID(t *testing.T) {
	train := fullPod("ml", "train", uidTrain, "node-a", running("main", "containerd://"+cidA), running("logger", "containerd://"+cidB))
	train.Status.InitContainerStatuses = []corev1.ContainerStatus{running("sidecar", "containerd://"+cidC)}
	infer := fullPod("serving", "infer", uidInfer, "node-a", running("server", "cri-o://"+cidD))
	idx := startIndex(t, fake.NewClientset(train, infer))

	tests := []struct {
		name        string
		uid         string
		containerID string
		want        PodRef
		wantOK      bool
	}{
		{name: "containerd container", uid: uidTrain, containerID: cidA, want: PodRef{Namespace: "ml", Name: "train", Container: "main", UID: uidTrain}, wantOK: true},
		{name: "second container", uid: uidTrain, containerID: cidB, want: PodRef{Namespace: "ml", Name: "train", Container: "logger", UID: uidTrain}, wantOK: true},
		{name: "sidecar init container", uid: uidTrain, containerID: cidC, want: PodRef{Namespace: "ml", Name: "train", Container: "sidecar", UID: uidTrain}, wantOK: true},
		{name: "cri-o container", uid: uidInfer, containerID: cidD, want: PodRef{Namespace: "serving", Name: "infer", Container: "server", UID: uidInfer}, wantOK: true},
		{name: "container of another pod", uid: uidInfer, containerID: cidA, want: PodRef{Namespace: "serving", Name: "infer", UID: uidInfer}, wantOK: true},
		{name: "unknown container", uid: uidTrain, containerID: "ee" + cidA[2:], want: PodRef{Namespace: "ml", Name: "train", UID: uidTrain}, wantOK: true},
		{name: "no container ID", uid: uidTrain, want: PodRef{Namespace: "ml", Name: "train", UID: uidTrain}, wantOK: true},
		{name: "container ID with runtime prefix is not stripped", uid: uidTrain, containerID: "containerd://" + cidA, want: PodRef{Namespace: "ml", Name: "train", UID: uidTrain}, wantOK: true},
		{name: "unknown pod", uid: "2d8c4e3a-516f-4a7c-8d9e-1f2a3b4c5d6e", containerID: cidA},
		{name: "empty UID", uid: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := idx.ByUID(tc.uid, tc.containerID)
			if ok != tc.wantOK {
				t.Fatalf("ByUID(%q, %q) ok = %v, want %v", tc.uid, tc.containerID, ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ByUID(%q, %q) (-want +got):\n%s", tc.uid, tc.containerID, diff)
			}
		})
	}

	// The cache holds the stripped pods only.
	for _, obj := range idx.informer.GetStore().List() {
		pod := obj.(*corev1.Pod)
		if len(pod.Labels) > 0 || pod.Annotations["gpufleet.io/gpu-model"] != "" || pod.Status.PodIP != "" || pod.ResourceVersion != "" ||
			len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != "" || len(pod.Spec.Containers[0].Resources.Limits) != 1 {
			t.Errorf("cached pod %s/%s was not stripped: %+v", pod.Namespace, pod.Name, pod)
		}
	}
}

func TestPodIndexWatchesOnlyItsNode(t *testing.T) {
	client := fake.NewClientset()
	startIndex(t, client)
	poll(t, "the informer to watch pods", func() bool {
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == "pods" {
				return true
			}
		}
		return false
	})
	const want = "spec.nodeName=node-a"
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "pods" {
			continue
		}
		var got string
		switch a := a.(type) {
		case clienttesting.ListActionImpl:
			got = a.GetListRestrictions().Fields.String()
		case clienttesting.WatchActionImpl:
			got = a.GetWatchRestrictions().Fields.String()
		default:
			t.Errorf("unexpected %s action on pods", a.GetVerb())
			continue
		}
		if got != want {
			t.Errorf("%s pods with field selector %q, want %q", a.GetVerb(), got, want)
		}
		if a.GetNamespace() != metav1.NamespaceAll {
			t.Errorf("%s pods in namespace %q, want all namespaces", a.GetVerb(), a.GetNamespace())
		}
	}
}

func TestPodIndexFollowsChanges(t *testing.T) {
	client := fake.NewClientset()
	idx := startIndex(t, client)
	ctx := t.Context()
	pods := client.CoreV1().Pods("ml")

	// A pod is scheduled; its container has not started.
	pod := fullPod("ml", "train", uidTrain, "node-a", corev1.ContainerStatus{Name: "main"})
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the new pod", func() bool {
		_, ok := idx.ByUID(uidTrain, cidA)
		return ok
	})
	if got, _ := idx.ByUID(uidTrain, cidA); got.Container != "" {
		t.Errorf("container %q before the container started, want none", got.Container)
	}

	// The container starts.
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{running("main", "containerd://"+cidA)}
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the container ID", func() bool {
		got, _ := idx.ByUID(uidTrain, cidA)
		return got.Container == "main"
	})

	// The pod is deleted.
	if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pod to leave the index", func() bool {
		_, ok := idx.ByUID(uidTrain, cidA)
		return !ok
	})
}
