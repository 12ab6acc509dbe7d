package deviceplugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/deviceplugintest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// TestIntegrationDevicePluginGPUFault: a GPU fails (simulated XID 79). The
// node's capacity drops to the healthy GPUs, the agent names the failed
// one on the node, new pods go to healthy GPUs, a pod that needs the
// failed GPU stays Pending with a reason that says so, and when the GPU
// recovers the capacity comes back and that pod runs.
func TestIntegrationDevicePluginGPUFault(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	const failed = 3
	if err := e.SetFault(ctx, failed, true); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitCapacity(ctx, deviceplugintest.GPUs-1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := waitAnnotation(ctx, e, "3"); err != nil {
		t.Fatal(err)
	}
	// Seven healthy GPUs: 4 + 2 whole and a share fill them.
	started, err := e.CreateAll(ctx, "healthy", []deviceplugintest.Shape{{GPUs: 4}, {GPUs: 2}, {Milli: 500}}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range started {
		gpus, _ := names.ParseGPUIndices(s.Pod.Annotations[names.AnnotationGPUIndices], deviceplugintest.GPUs)
		if slices.Contains(gpus, failed) {
			t.Errorf("pod %s was placed on the failed GPU %d (GPUs %v)", s.Pod.Name, failed, gpus)
		}
		if err := e.Check(ctx, s.Pod); err != nil {
			t.Error(err)
		}
	}
	// One more whole GPU: only the failed one is left.
	if _, err := e.Client.CoreV1().Pods(deviceplugintest.Namespace).Create(ctx, deviceplugintest.Pod("waits", deviceplugintest.Shape{GPUs: 1}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var reason string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		evs, err := e.Client.CoreV1().Events(deviceplugintest.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=waits,reason=FailedScheduling"})
		if err != nil || len(evs.Items) == 0 {
			return false, nil
		}
		reason = evs.Items[len(evs.Items)-1].Message
		return strings.Contains(reason, fmt.Sprintf("unhealthy GPUs %d", failed)), nil
	})
	if err != nil {
		t.Fatalf("the pending pod's reason %q does not name the unhealthy GPU: %v", reason, err)
	}
	t.Logf("pending while GPU %d is failed: %s", failed, reason)

	recovered := time.Now()
	if err := e.SetFault(ctx, failed, false); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitCapacity(ctx, deviceplugintest.GPUs, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := waitAnnotation(ctx, e, ""); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := e.Client.CoreV1().Pods(deviceplugintest.Namespace).Get(ctx, "waits", metav1.GetOptions{})
		if err != nil || p.Status.Phase != "Running" {
			return false, nil
		}
		if p.Annotations[names.AnnotationGPUIndices] != "3" {
			return false, fmt.Errorf("pod waits got GPUs %q, want the recovered GPU 3", p.Annotations[names.AnnotationGPUIndices])
		}
		return true, e.Check(ctx, p)
	})
	if err != nil {
		t.Fatalf("after GPU %d recovered: %v", failed, err)
	}
	t.Logf("GPU %d recovered: capacity back and the waiting pod running %.1f s after the fault cleared (the agent holds a GPU unhealthy for a minute after an XID)", failed, time.Since(recovered).Seconds())
}

// waitAnnotation waits until the node's unhealthy-GPU annotation is want
// ("" : absent).
func waitAnnotation(ctx context.Context, e *deviceplugintest.Env, want string) error {
	var got string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := e.Client.CoreV1().Nodes().Get(ctx, e.Node.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = n.Annotations[names.AnnotationGPUUnhealthy]
		return got == want, nil
	})
	if err != nil {
		return fmt.Errorf("node annotation %s=%q, want %q: %w", names.AnnotationGPUUnhealthy, got, want, err)
	}
	return nil
}
