package deviceplugin

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// The plugin finds the pod the kubelet admits as the one active pod with a
// GPU container that has no devices yet.

func TestOldestOfSeveralPendingPodsIsSteered(t *testing.T) {
	for _, tc := range []struct {
		name        string
		olderListed bool // the older pod comes first in pod-resources
	}{
		{name: "older pod listed first", olderListed: true},
		{name: "older pod listed last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			base := time.Date(2025, 5, 2, 10, 0, 0, 0, time.UTC)
			older := newPod("older").on("1").app("main", ResourceMilli, 250).createdAt(base).obj()
			newer := newPod("newer").on("2").app("main", ResourceMilli, 250).createdAt(base.Add(time.Minute)).obj()
			order := []string{"newer", "older"}
			if tc.olderListed {
				order = []string{"older", "newer"}
			}
			for _, name := range order {
				pod := map[string]*corev1.Pod{"older": older, "newer": newer}[name]
				h.pods.add(pod)
				h.podres.activate(pod)
			}

			ids, err := h.kubelet.preferred(t, ResourceMilli, slices.Collect(maps.Keys(h.kubelet.available(ResourceMilli))), nil, 250)
			if err != nil {
				t.Fatalf("GetPreferredAllocation: %v", err)
			}
			if got := gpuIndices(ResourceMilli, ids); len(ids) != 250 || !slices.Equal(got, []int{1}) {
				t.Errorf("preferred %d IDs on GPUs %v, want 250 on GPU 1 (the older pod's)", len(ids), got)
			}
			if got := metric(t, h.plugin, "gpufleet_deviceplugin_ambiguous_admissions_total", "resource", ResourceMilli); got != 1 {
				t.Errorf("ambiguous_admissions_total = %v, want 1", got)
			}
		})
	}
}

func TestWithoutAPendingPodThePluginChooses(t *testing.T) {
	h := start(t)
	// Active pods that hold their devices already are not being admitted.
	h.hold(newPod("running").on("0").app("main", ResourceMilli, 300).obj(), "main", ResourceMilli, milliIDs(0, 0, 300))

	ids, err := h.kubelet.preferred(t, ResourceMilli, slices.Collect(maps.Keys(h.kubelet.available(ResourceMilli))), nil, 500)
	if err != nil {
		t.Fatalf("GetPreferredAllocation: %v", err)
	}
	if got := gpuIndices(ResourceMilli, ids); len(ids) != 500 || len(got) != 1 {
		t.Errorf("preferred %d IDs on GPUs %v, want 500 on one GPU", len(ids), got)
	}
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_unidentified_admissions_total", "resource", ResourceMilli); got != 1 {
		t.Errorf("unidentified_admissions_total = %v, want 1", got)
	}
}

func TestSteeredInitOnlyPodIsNotTakenForTheNextAdmission(t *testing.T) {
	h := start(t)
	// Pod-resources does not list plain init containers, and the index has
	// no start time for the pod yet: only the plugin's memory of steering
	// it tells it apart from a pod waiting for devices.
	convert := newPod("convert").on("7").init("convert", ResourceMilli, 500).app("serve", "", 0).obj()
	checkSteered(t, convert, h.mustAdmit(convert))

	infer := newPod("infer").on("2").app("main", ResourceMilli, 250).obj()
	checkSteered(t, infer, h.mustAdmit(infer))
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_ambiguous_admissions_total", "resource", ResourceMilli); got != 0 {
		t.Errorf("ambiguous_admissions_total = %v, want 0", got)
	}
}

func TestPodIndexCatchingUpWithTheKubeletIsAwaited(t *testing.T) {
	h := start(t)
	pod := newPod("infer").on("6").app("main", ResourceMilli, 250).obj()
	// The kubelet lists the pod before the index's watch brings it: the
	// index misses it a few times.
	h.pods.add(pod)
	h.pods.lag(pod, 5)
	h.podres.activate(pod)

	ids, err := h.kubelet.preferred(t, ResourceMilli, slices.Collect(maps.Keys(h.kubelet.available(ResourceMilli))), nil, 250)
	if err != nil {
		t.Fatalf("GetPreferredAllocation: %v", err)
	}
	if got := gpuIndices(ResourceMilli, ids); len(ids) != 250 || !slices.Equal(got, []int{6}) {
		t.Errorf("preferred %d IDs on GPUs %v, want 250 on GPU 6", len(ids), got)
	}
}

// A pod the kubelet lists but the index never sees (e.g. deleted from the
// API server while the kubelet still runs it) costs at most podWaitTimeout;
// the plugin then chooses, whatever clock Config.Now is.
func TestPodUnknownToTheIndexIsGivenUpOn(t *testing.T) {
	frozen := time.Date(2025, 5, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		now  func() time.Time
	}{
		{name: "real clock"},
		{
			name: "frozen clock", now: func() time.Time { return frozen },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Now = tc.now })
			h.podres.activate(newPod("ghost").on("1").app("main", ResourceMilli, 250).obj())

			ctx, cancel := context.WithTimeout(t.Context(), podWaitTimeout+3*time.Second)
			defer cancel()
			resp, err := h.kubelet.client(t, ResourceMilli).GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{
				ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{AvailableDeviceIDs: milliIDs(0, 0, 1000), AllocationSize: 250}},
			})
			if err != nil {
				t.Fatalf("GetPreferredAllocation: %v, want an answer within %v", err, podWaitTimeout)
			}
			if n := len(resp.GetContainerResponses()[0].GetDeviceIDs()); n != 250 {
				t.Errorf("preferred %d IDs, want the plugin's choice of 250", n)
			}
			if got := metric(t, h.plugin, "gpufleet_deviceplugin_unidentified_admissions_total", "resource", ResourceMilli); got != 1 {
				t.Errorf("unidentified_admissions_total = %v, want 1", got)
			}
		})
	}
}

// A pod whose app container reused its init container's GPU (the kubelet
// asks the plugin nothing for it) was admitted already: the next pod the
// kubelet admits is the one to steer, though the first is older and not
// started yet. (Seen on the real node: the first pod was steered again and
// the second refused.)
func TestInitReusePodIsNotTakenForTheNextAdmission(t *testing.T) {
	h := start(t)
	base := time.Date(2025, 5, 2, 10, 0, 0, 0, time.UTC)
	first := newPod("init-reuse").on("1").init("setup", ResourceWhole, 1).app("main", ResourceWhole, 1).createdAt(base).obj()
	allocs := h.mustAdmit(first)
	if got := gpuIndices(ResourceWhole, allocs["main"].devices); !slices.Equal(got, []int{1}) {
		t.Fatalf("first pod's app container on GPUs %v, want 1", got)
	}
	second := newPod("next").on("2,3").app("a", ResourceWhole, 1).app("b", ResourceWhole, 1).createdAt(base).obj()
	allocs = h.mustAdmit(second)
	var got []int
	for _, c := range []string{"a", "b"} {
		got = append(got, gpuIndices(ResourceWhole, allocs[c].devices)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{2, 3}) {
		t.Errorf("second pod's containers on GPUs %v, want 2 and 3", got)
	}
	if n := metric(t, h.plugin, "gpufleet_deviceplugin_ambiguous_admissions_total", "resource", ResourceWhole); n != 0 {
		t.Errorf("ambiguous_admissions_total = %v, want 0", n)
	}
}
