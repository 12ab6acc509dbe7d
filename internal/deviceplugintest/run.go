package deviceplugintest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
)

// testLabel selects the environment's test pods.
const testLabel = "app=deviceplugin-test"

// Started is one pod of a batch, Running.
type Started struct {
	Pod *corev1.Pod
	// CreateToRunning is from just before the pod's create call to the
	// watch event that showed it Running.
	CreateToRunning time.Duration
}

// CreateAll creates one pod per shape at once, in order (named prefix-000,
// ...), and
// waits until every one runs. A pod that fails, or is not running by the
// deadline, is an error that names it and its events.
func (e *Env) CreateAll(ctx context.Context, prefix string, shapes []Shape, timeout time.Duration) ([]Started, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := e.Client.CoreV1().Pods(Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: testLabel})
	if err != nil {
		return nil, err
	}
	defer func() { w.Stop() }()
	var mu sync.Mutex
	created := map[string]time.Time{}
	// Sixteen creators take the pods in order: the first pods of shapes
	// reach the scheduler first.
	errc := make(chan error, len(shapes))
	next := make(chan int, len(shapes))
	for i := range shapes {
		next <- i
	}
	close(next)
	for range 16 {
		go func() {
			for i := range next {
				pod := Pod(podName(prefix, i), shapes[i])
				mu.Lock()
				created[pod.Name] = time.Now()
				mu.Unlock()
				_, err := e.Client.CoreV1().Pods(Namespace).Create(ctx, pod, metav1.CreateOptions{})
				errc <- err
			}
		}()
	}
	for range shapes {
		if err := <-errc; err != nil {
			return nil, fmt.Errorf("creating a pod: %w", err)
		}
	}
	running := map[string]Started{}
	observe := func(pod *corev1.Pod) error {
		now := time.Now()
		mu.Lock()
		start, mine := created[pod.Name]
		mu.Unlock()
		if !mine {
			return nil
		}
		switch pod.Status.Phase {
		case corev1.PodFailed:
			return fmt.Errorf("pod %s failed: %s: %s\n%s", pod.Name, pod.Status.Reason, pod.Status.Message, e.events(pod.Name))
		case corev1.PodRunning:
			if _, seen := running[pod.Name]; !seen && allRunning(pod) {
				running[pod.Name] = Started{Pod: pod, CreateToRunning: now.Sub(start)}
			}
		}
		return nil
	}
	for len(running) < len(shapes) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods running after %s: %w\n%s", len(running), len(shapes), timeout, ctx.Err(), e.notRunning(running))
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The API server ends watches now and then: list what was
				// missed and watch on from there.
				list, err := e.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: testLabel})
				if err != nil {
					return nil, fmt.Errorf("pod watch closed, and listing: %w", err)
				}
				if w, err = e.Client.CoreV1().Pods(Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: testLabel, ResourceVersion: list.ResourceVersion}); err != nil {
					return nil, fmt.Errorf("pod watch closed, and watching again: %w", err)
				}
				for i := range list.Items {
					if err := observe(&list.Items[i]); err != nil {
						return nil, err
					}
				}
				continue
			}
			if ev.Type == watch.Error {
				return nil, fmt.Errorf("pod watch: %v", ev.Object)
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if err := observe(pod); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Started, 0, len(running))
	for _, s := range running {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Started) int { return compareNames(a.Pod.Name, b.Pod.Name) })
	return out, nil
}

func compareNames(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// allRunning says whether every app container of the pod runs.
func allRunning(pod *corev1.Pod) bool {
	if len(pod.Status.ContainerStatuses) < len(pod.Spec.Containers) {
		return false
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.State.Running == nil {
			return false
		}
	}
	return true
}

// notRunning describes the test pods that are not running, with events.
func (e *Env) notRunning(running map[string]Started) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := e.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: testLabel})
	if err != nil {
		return err.Error()
	}
	out := ""
	shown := 0
	for _, p := range pods.Items {
		if _, ok := running[p.Name]; ok || shown >= 5 {
			continue
		}
		shown++
		out += fmt.Sprintf("pod %s: phase %s node %q gpus %q\n%s", p.Name, p.Status.Phase, p.Spec.NodeName, p.Annotations["gpufleet.io/gpu-indices"], e.events(p.Name))
	}
	return out
}

// events lists a test pod's events.
func (e *Env) events(pod string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := e.Client.CoreV1().Events(Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, ev := range evs.Items {
		out += fmt.Sprintf("  %s %s: %s\n", ev.Type, ev.Reason, ev.Message)
	}
	return out
}

// DeleteAll deletes every test pod and waits until they are gone: the
// kubelet confirms each deletion once the pod's containers have stopped, so
// their devices are free again when it returns.
func (e *Env) DeleteAll(ctx context.Context) error {
	err := e.Client.CoreV1().Pods(Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: testLabel})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := e.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: testLabel})
		return err == nil && len(pods.Items) == 0, nil
	})
}
