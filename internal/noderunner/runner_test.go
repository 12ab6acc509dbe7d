package noderunner

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// recorder is a workload that records, when it is stopped, whether its pod
// was still Ready in the API.
type recorder struct {
	client kubernetes.Interface

	mu            sync.Mutex
	started       []string
	readyAtStop   []bool
	stoppedReason []string
}

func (r *recorder) Start(_ context.Context, pod *corev1.Pod, ip string) (func(), error) {
	r.mu.Lock()
	r.started = append(r.started, ip)
	r.mu.Unlock()
	ns, name := pod.Namespace, pod.Name
	return func() {
		p, err := r.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.stoppedReason = append(r.stoppedReason, err.Error())
			return
		}
		r.readyAtStop = append(r.readyAtStop, Ready(p))
	}, nil
}

func TestRunnerReportsNotReadyBeforeStopping(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := fake.NewClientset()
	w := &recorder{client: client}
	r := New(client, []string{"node-a"}, w, WithIPBlock(42))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "model-0", Namespace: "ml", UID: "uid-0"},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "server"}}},
	}
	if _, err := client.CoreV1().Pods("ml").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("ml").Get(ctx, "model-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = p
		return p.Status.Phase == corev1.PodRunning && Ready(p), nil
	})
	if err != nil {
		t.Fatalf("pod never reported running and ready: %v (status %+v)", err, got.Status)
	}
	if got.Status.PodIP != "127.42.1.1" {
		t.Errorf("pod IP %q, want the first address of block 42, 127.42.1.1", got.Status.PodIP)
	}

	// A graceful deletion as the API server records it: a deletion timestamp.
	now := metav1.Now()
	got.DeletionTimestamp = &now
	if _, err := client.CoreV1().Pods("ml").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods("ml").Get(ctx, "model-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("terminating pod never removed: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.readyAtStop) != 1 || w.readyAtStop[0] || len(w.stoppedReason) > 0 {
		t.Errorf("at stop: ready %v, errors %v; want one stop, with the pod already not ready", w.readyAtStop, w.stoppedReason)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestIPPoolBlocks(t *testing.T) {
	for _, tc := range []struct {
		block byte
		want  []string
	}{
		{0, []string{"127.0.1.1", "127.0.1.2"}},
		{200, []string{"127.200.1.1", "127.200.1.2"}},
	} {
		p := newIPPool(tc.block)
		for i, want := range tc.want {
			if got := p.get(); got != want {
				t.Errorf("block %d, address %d: got %s, want %s", tc.block, i, got, want)
			}
		}
	}
}
