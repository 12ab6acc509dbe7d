package loadgen

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name, ip string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Labels: map[string]string{"app": "m"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func (g *Generator) currentTargets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.targets)
}

// Targets follow ready pods; a pod being deleted leaves them at once.
func TestFollowPods(t *testing.T) {
	terminating := pod("c", "10.0.0.3", true)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	client := fake.NewClientset(pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false), terminating, pod("d", "", true))
	g := New(time.Second)
	urls := func(p *corev1.Pod) []string {
		return []string{"http://" + p.Status.PodIP + "/x", "http://" + p.Status.PodIP + "/y"}
	}
	if err := g.FollowPods(t.Context(), client, "ml", "app=m", urls); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"http://10.0.0.1/x", "http://10.0.0.1/y"}, g.currentTargets()); diff != "" {
		t.Errorf("targets after the first list (-want +got):\n%s", diff)
	}

	waitTargets := func(want []string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return cmp.Equal(want, g.currentTargets()), nil
		})
		if err != nil {
			t.Fatalf("targets %v, want %v", g.currentTargets(), want)
		}
	}
	if _, err := client.CoreV1().Pods("ml").UpdateStatus(t.Context(), pod("b", "10.0.0.2", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTargets([]string{"http://10.0.0.1/x", "http://10.0.0.1/y", "http://10.0.0.2/x", "http://10.0.0.2/y"})

	deleting := pod("a", "10.0.0.1", true)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if _, err := client.CoreV1().Pods("ml").Update(t.Context(), deleting, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTargets([]string{"http://10.0.0.2/x", "http://10.0.0.2/y"})
}
