package deviceplugin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// PreStartContainer checks, before a container starts, that the devices
// the kubelet gave it are its pod's annotated GPUs: the kubelet may have
// ignored the plugin's preference (e.g. for NUMA alignment).

type preStartCase struct {
	name     string
	pod      *corev1.Pod
	resource string
	ids      []string
	// listed: a listed container of pod holds ids.
	listed bool
	// mismatch: the devices are not the annotated GPUs; msg are parts of
	// the message.
	mismatch bool
	msg      []string
}

func preStartCases() []preStartCase {
	return []preStartCase{
		{
			name: "share on the annotated GPU", listed: true,
			pod:      newPod("infer").on("2").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: milliIDs(2, 0, 250),
		},
		{
			name: "whole GPUs of the annotation", listed: true,
			pod:      newPod("train").on("0,1").app("main", ResourceWhole, 2).obj(),
			resource: ResourceWhole, ids: wholeIDs(1, 0),
		},
		{
			name: "pod without annotation", listed: true,
			pod:      newPod("adhoc").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: milliIDs(6, 0, 250),
		},
		{
			name: "share on another GPU", listed: true, mismatch: true,
			pod:      newPod("infer").on("2").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: milliIDs(5, 0, 250),
			msg: []string{"ml/infer", "main", "GPUs 5", "gpufleet.io/gpu-indices=2", "GPUs 2"},
		},
		{
			name: "whole GPUs partly outside the annotation", listed: true, mismatch: true,
			pod:      newPod("train").on("0,1").app("main", ResourceWhole, 2).obj(),
			resource: ResourceWhole, ids: wholeIDs(0, 2),
			msg: []string{"ml/train", "main", "GPUs 0,2", "GPUs 0,1"},
		},
		{
			name: "share spread over the annotated GPU and another", listed: true, mismatch: true,
			pod:      newPod("infer").on("2").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: append(milliIDs(2, 0, 125), milliIDs(3, 0, 125)...),
			msg: []string{"ml/infer", "GPUs 2,3"},
		},
		{
			name: "unreadable annotation", listed: true, mismatch: true,
			pod:      newPod("infer").on("two").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: milliIDs(2, 0, 250),
			msg: []string{"ml/infer", `"two"`},
		},
		{
			name:     "devices no listed container holds",
			pod:      newPod("infer").on("2").app("main", ResourceMilli, 250).obj(),
			resource: ResourceMilli, ids: milliIDs(5, 0, 250),
		},
	}
}

func TestPreStartContainerChecksTheAnnotatedGPUs(t *testing.T) {
	for _, policy := range []string{OnMismatchRefuse, OnMismatchWarn} {
		for _, tc := range preStartCases() {
			t.Run(policy+"/"+tc.name, func(t *testing.T) {
				h := start(t, func(c *Config) { c.OnMismatch = policy })
				if tc.listed {
					h.hold(tc.pod, "main", tc.resource, tc.ids)
				} else {
					h.pods.add(tc.pod)
					h.podres.activate(tc.pod)
				}

				err := h.kubelet.preStart(t, tc.resource, tc.ids)

				mismatches := metric(t, h.plugin, "gpufleet_deviceplugin_mismatches_total", "resource", tc.resource)
				verified := metric(t, h.plugin, "gpufleet_deviceplugin_verified_containers_total", "resource", tc.resource)
				unverified := metric(t, h.plugin, "gpufleet_deviceplugin_unverified_containers_total", "resource", tc.resource)
				evs := h.events.withReason(ReasonGPUMismatch)
				if !tc.mismatch {
					if err != nil {
						t.Errorf("PreStartContainer: %v", err)
					}
					if mismatches != 0 || len(evs) != 0 {
						t.Errorf("mismatches_total = %v, %d Events, want none", mismatches, len(evs))
					}
					// Containers with an annotation that the plugin can find
					// are checked; others are counted as unchecked.
					wantVerified, wantUnverified := 0.0, 0.0
					switch {
					case !tc.listed:
						wantUnverified = 1
					case tc.pod.Annotations != nil:
						wantVerified = 1
					}
					if verified != wantVerified || unverified != wantUnverified {
						t.Errorf("verified_containers_total = %v, unverified_containers_total = %v, want %v, %v", verified, unverified, wantVerified, wantUnverified)
					}
					return
				}

				switch code := status.Code(err); {
				case policy == OnMismatchRefuse && code != codes.FailedPrecondition:
					t.Errorf("PreStartContainer error %v, want code FailedPrecondition", err)
				case policy == OnMismatchWarn && err != nil:
					t.Errorf("PreStartContainer: %v, want no error under %q", err, policy)
				}
				if m := missing(errMsg(err), tc.msg...); policy == OnMismatchRefuse && m != nil {
					t.Errorf("error %q does not name %q", err, m)
				}
				if mismatches != 1 || verified != 0 {
					t.Errorf("mismatches_total = %v, verified_containers_total = %v, want 1, 0", mismatches, verified)
				}
				if len(evs) != 1 {
					t.Fatalf("%d Events with reason %s, want 1", len(evs), ReasonGPUMismatch)
				}
				ev := evs[0]
				if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.Name != tc.pod.Name ||
					ev.InvolvedObject.Namespace != tc.pod.Namespace || ev.InvolvedObject.UID != tc.pod.UID {
					t.Errorf("Event %s about %+v, want a Warning about pod %s/%s", ev.Type, ev.InvolvedObject, tc.pod.Namespace, tc.pod.Name)
				}
				if m := missing(ev.Message, tc.msg...); m != nil {
					t.Errorf("Event message %q does not name %q", ev.Message, m)
				}
			})
		}
	}
}

func TestMismatchesAreExposedOnMetrics(t *testing.T) {
	h := start(t)
	pod := newPod("infer").on("2").app("main", ResourceMilli, 250).obj()
	h.hold(pod, "main", ResourceMilli, milliIDs(5, 0, 250))
	other := newPod("train").on("0").app("main", ResourceWhole, 1).obj()
	h.hold(other, "main", ResourceWhole, wholeIDs(1))
	for _, c := range []struct {
		resource string
		ids      []string
	}{{ResourceMilli, milliIDs(5, 0, 250)}, {ResourceWhole, wholeIDs(1)}, {ResourceWhole, wholeIDs(1)}} {
		if err := h.kubelet.preStart(t, c.resource, c.ids); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("PreStartContainer error %v, want code FailedPrecondition", err)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.plugin.Collectors()...)
	const want = `
# HELP gpufleet_deviceplugin_mismatches_total Containers whose devices were not the GPUs of their pod's gpufleet.io/gpu-indices annotation at PreStartContainer.
# TYPE gpufleet_deviceplugin_mismatches_total counter
gpufleet_deviceplugin_mismatches_total{resource="gpufleet.io/gpu-milli"} 1
gpufleet_deviceplugin_mismatches_total{resource="nvidia.com/gpu"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gpufleet_deviceplugin_mismatches_total"); err != nil {
		t.Error(err)
	}
}

func TestMismatchIsRefusedWhenTheEventCannotBePosted(t *testing.T) {
	h := start(t)
	h.events.fail(errors.New("events is forbidden: User \"system:serviceaccount:gpufleet:gpu-agent\" cannot create resource \"events\""))
	h.hold(newPod("infer").on("2").app("main", ResourceMilli, 250).obj(), "main", ResourceMilli, milliIDs(5, 0, 250))

	if err := h.kubelet.preStart(t, ResourceMilli, milliIDs(5, 0, 250)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("PreStartContainer error %v, want code FailedPrecondition", err)
	}
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_mismatches_total", "resource", ResourceMilli); got != 1 {
		t.Errorf("mismatches_total = %v, want 1", got)
	}
}

func TestPreStartContainerWhenPodResourcesDoesNotAnswer(t *testing.T) {
	for _, tc := range []struct {
		policy string
		code   codes.Code
	}{
		{OnMismatchRefuse, codes.Unavailable},
		{OnMismatchWarn, codes.OK},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			h := start(t, func(c *Config) { c.OnMismatch = tc.policy })
			h.podres.fail(errListFailed)
			if err := h.kubelet.preStart(t, ResourceMilli, milliIDs(0, 0, 250)); status.Code(err) != tc.code {
				t.Errorf("PreStartContainer error %v, want code %s", err, tc.code)
			}
		})
	}
}

// PreStartContainer of a container the plugin steered reads that one pod
// from the kubelet (a Get) instead of every active pod (a List, whose
// answer holds every device of the node): app containers, sidecars and
// plain init containers (which the pod-resources API does not list) alike.
func TestPreStartContainerOfASteeredPodGetsOnePod(t *testing.T) {
	h := start(t)
	// Other pods on the node: a List would carry all of them.
	for i := range 4 {
		h.mustAdmit(newPod(fmt.Sprintf("other-%d", i)).on(strconv.Itoa(4+i%4)).app("main", ResourceMilli, 200).obj())
	}
	pod := newPod("infer").on("2").
		init("fetch", ResourceMilli, 100).
		sidecar("proxy", ResourceMilli, 100).
		app("main", ResourceMilli, 250).obj()
	allocs := h.mustAdmit(pod)
	gets0, lists0 := h.podres.calls()
	for name, err := range h.preStart(allocs) {
		t.Errorf("PreStartContainer of %s: %v", name, err)
	}
	gets, lists := h.podres.calls()
	if gets-gets0 != len(allocs) || lists != lists0 {
		t.Errorf("%d PreStartContainer calls made %d Gets and %d Lists, want one Get each and no List", len(allocs), gets-gets0, lists-lists0)
	}
	if v := metric(t, h.plugin, "gpufleet_deviceplugin_verified_containers_total", "resource", ResourceMilli); v != float64(len(allocs)) {
		t.Errorf("verified_containers_total = %v, want %d", v, len(allocs))
	}
}

// A container the plugin steered that the kubelet gave other devices
// (another GPU than the annotation's) is still refused when the check
// goes through Get; devices the plugin never steered are found by a List.
func TestPreStartContainerGetAndListAgree(t *testing.T) {
	h := start(t)
	pod := newPod("infer").on("2").app("main", ResourceMilli, 250).obj()
	allocs := h.mustAdmit(pod)
	if errs := h.preStart(allocs); len(errs) != 0 {
		t.Fatalf("PreStartContainer: %v", errs)
	}
	// The kubelet moves the container to GPU 5 behind the plugin's back
	// (no GetPreferredAllocation for these IDs): only a List finds them.
	other := milliIDs(5, 0, 250)
	h.podres.setDevices(pod.Namespace, pod.Name, "main", ResourceMilli, other)
	_, lists0 := h.podres.calls()
	err := h.kubelet.preStart(t, ResourceMilli, other)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(errMsg(err), "GPUs 5") {
		t.Errorf("PreStartContainer of devices on GPU 5 for a pod annotated with GPU 2: %v, want FailedPrecondition naming GPUs 5", err)
	}
	if _, lists := h.podres.calls(); lists == lists0 {
		t.Errorf("devices the plugin did not steer were checked without a List")
	}
}
