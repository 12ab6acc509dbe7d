package deviceplugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/internal/deviceplugintest"
)

// TestIntegrationDevicePluginRestarts: the agent (the device plugin) and the
// kubelet each restart under running GPU pods. Capacity comes back, the
// running containers are untouched (same containers, no restarts, still
// exactly their GPUs), and new pods are steered right: the plugin keeps no
// state a restart loses.
func TestIntegrationDevicePluginRestarts(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	running, err := e.CreateAll(ctx, "before", []deviceplugintest.Shape{{Milli: 250}, {GPUs: 2}, {Milli: 500}, {Milli: 300}}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range running {
		ids[s.Pod.Name] = containerIDs(s.Pod)
	}
	for _, restart := range []struct {
		what string
		do   func(context.Context) error
	}{
		{"gpu-agent", e.RestartAgent},
		{"kubelet", func(ctx context.Context) error {
			return e.RestartKubelet(ctx, slices.Collect(maps.Keys(ids)))
		}},
	} {
		before, err := e.ScrapePlugin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := restart.do(ctx); err != nil {
			t.Fatalf("restarting the %s: %v", restart.what, err)
		}
		t.Logf("%s restarted; node advertises %d GPUs again after %.1f s", restart.what, deviceplugintest.GPUs, time.Since(t0).Seconds())
		for name, want := range ids {
			pod, err := e.Client.CoreV1().Pods(deviceplugintest.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := containerIDs(pod); got != want {
				t.Errorf("after the %s restart, pod %s's containers changed: %s, were %s", restart.what, name, got, want)
			}
			if err := e.Check(ctx, pod); err != nil {
				t.Errorf("after the %s restart: %v", restart.what, err)
			}
		}
		// A new pod beside the running ones.
		added, err := e.CreateAll(ctx, "after-"+restart.what, []deviceplugintest.Shape{{Milli: 200}, {GPUs: 1}}, 2*time.Minute)
		if err != nil {
			t.Fatalf("after the %s restart: %v", restart.what, err)
		}
		for _, s := range added {
			if err := e.Check(ctx, s.Pod); err != nil {
				t.Errorf("new pod after the %s restart: %v", restart.what, err)
			}
			ids[s.Pod.Name] = containerIDs(s.Pod)
		}
		after, err := e.ScrapePlugin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := after.Since(before, "gpufleet_deviceplugin_registrations_total"); restart.what == "kubelet" && n < 2 {
			t.Errorf("the plugin registered %v times with the restarted kubelet, want both resources again", n)
		}
		for _, c := range []string{"gpufleet_deviceplugin_mismatches_total", "gpufleet_deviceplugin_ambiguous_admissions_total", "gpufleet_deviceplugin_unidentified_admissions_total"} {
			if v := after.Counters[c]; v != 0 {
				t.Errorf("after the %s restart: %s = %v", restart.what, c, v)
			}
		}
	}
}

// containerIDs lists a pod's containers with their IDs and restart counts.
func containerIDs(pod *corev1.Pod) string {
	out := ""
	for _, s := range pod.Status.ContainerStatuses {
		out += fmt.Sprintf("%s=%s/%d ", s.Name, s.ContainerID, s.RestartCount)
	}
	return out
}
