package deviceplugin

import (
	"maps"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// steeringFailures are admissions whose annotated GPUs the node cannot give.
var steeringFailures = []struct {
	name string
	held []holding
	// unhealthy GPUs, as the health source reports them.
	unhealthy []int
	pod       *corev1.Pod
	// msg are parts of the error and Event message.
	msg []string
}{
	{
		name: "share on a GPU given out whole",
		held: []holding{{pod: "trainer", on: "2", resource: ResourceWhole, ids: wholeIDs(2)}},
		pod:  newPod("infer").on("2").app("main", ResourceMilli, 250).obj(),
		msg:  []string{"ml/infer", "GPU 2", "ml/trainer/main"},
	},
	{
		name: "whole GPU with shares in use",
		held: []holding{{pod: "notebook", on: "5", resource: ResourceMilli, ids: milliIDs(5, 0, 250)}},
		pod:  newPod("train").on("5").app("main", ResourceWhole, 1).obj(),
		msg:  []string{"ml/train", "GPU 5", "ml/notebook/main"},
	},
	{
		name: "share larger than the GPU's free part",
		held: []holding{{pod: "batch", on: "5", resource: ResourceMilli, ids: milliIDs(5, 0, 900)}},
		pod:  newPod("infer").on("5").app("main", ResourceMilli, 250).obj(),
		msg:  []string{"ml/infer", "GPU 5", "100 milli free", "ml/batch/main"},
	},
	{
		name:      "share on an unhealthy GPU",
		unhealthy: []int{3},
		pod:       newPod("infer").on("3").app("main", ResourceMilli, 250).obj(),
		msg:       []string{"ml/infer", "GPU 3"},
	},
	{
		name:      "whole GPU that is unhealthy",
		unhealthy: []int{3},
		pod:       newPod("train").on("3").app("main", ResourceWhole, 1).obj(),
		msg:       []string{"ml/train", "GPU 3"},
	},
	{
		name: "share with an annotation naming two GPUs",
		pod:  newPod("infer").on("1,2").app("main", ResourceMilli, 250).obj(),
		msg:  []string{"ml/infer", "names 2 GPUs"},
	},
	{
		name: "annotation naming a GPU the node lacks",
		pod:  newPod("train").on("9").app("main", ResourceWhole, 1).obj(),
		msg:  []string{"ml/train", "GPU 9"},
	},
}

func TestSteeringFailureIsRefusedAndReported(t *testing.T) {
	for _, tc := range steeringFailures {
		t.Run(tc.name, func(t *testing.T) {
			// No OnMismatch: refusing is the default.
			h := startSteeringFailure(t, tc.held, tc.unhealthy)
			res, _ := gpuRequest(t, tc.pod.Spec.Containers[0])

			_, err := h.admit(tc.pod)
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("admission error %v, want code FailedPrecondition", err)
			}
			if m := missing(errMsg(err), tc.msg...); m != nil {
				t.Errorf("error %q does not name %q", err, m)
			}
			checkSteeringEvent(t, h, tc.pod, tc.msg)
			if got := metric(t, h.plugin, "gpufleet_deviceplugin_steering_failures_total", "resource", res); got != 1 {
				t.Errorf("steering_failures_total{resource=%q} = %v, want 1", res, got)
			}
		})
	}
}

func TestSteeringFailureUnderWarnIsReportedAndNotRefused(t *testing.T) {
	for _, tc := range steeringFailures {
		t.Run(tc.name, func(t *testing.T) {
			h := startSteeringFailure(t, tc.held, tc.unhealthy, warnOnMismatch)
			h.pods.add(tc.pod)
			h.podres.activate(tc.pod)
			res, n := gpuRequest(t, tc.pod.Spec.Containers[0])

			if _, err := h.kubelet.preferred(t, res, slices.Collect(maps.Keys(h.kubelet.available(res))), nil, n); err != nil {
				t.Fatalf("GetPreferredAllocation: %v, want no error under %q", err, OnMismatchWarn)
			}
			checkSteeringEvent(t, h, tc.pod, tc.msg)
			if got := metric(t, h.plugin, "gpufleet_deviceplugin_steering_failures_total", "resource", res); got != 1 {
				t.Errorf("steering_failures_total{resource=%q} = %v, want 1", res, got)
			}
		})
	}
}

// Under warn, a pod whose annotated GPU cannot be had must still get a
// usable allocation: a share on one GPU that is not given out whole.
func TestSteeringFailureUnderWarnStillAdmitsAShare(t *testing.T) {
	h := startSteeringFailure(t, steeringFailures[0].held, nil, warnOnMismatch)
	pod := steeringFailures[0].pod.DeepCopy()

	allocs, err := h.admit(pod)
	if err != nil {
		t.Fatalf("admission under %q: %v", OnMismatchWarn, err)
	}
	a := allocs["main"]
	if got := gpuIndices(ResourceMilli, a.devices); len(got) != 1 || got[0] == 2 {
		t.Errorf("share got GPUs %v, want one GPU other than 2 (given out whole)", got)
	}
}

func startSteeringFailure(t *testing.T, held []holding, unhealthy []int, opts ...func(*Config)) *harness {
	t.Helper()
	health := map[int]bool{}
	for _, g := range unhealthy {
		health[g] = false
	}
	h := start(t, append(opts, func(c *Config) { c.Health = func() map[int]bool { return health } })...)
	h.holdAll(held)
	return h
}

// checkSteeringEvent checks the Warning Event on pod about its annotated
// GPUs.
func checkSteeringEvent(t *testing.T, h *harness, pod *corev1.Pod, msg []string) {
	t.Helper()
	evs := h.events.withReason(ReasonGPUSteering)
	if len(evs) != 1 {
		t.Fatalf("%d Events with reason %s, want 1", len(evs), ReasonGPUSteering)
	}
	ev := evs[0]
	if ev.Reason != "GPUAllocationFailed" || ev.Type != corev1.EventTypeWarning {
		t.Errorf("Event %s/%s, want Warning/GPUAllocationFailed", ev.Type, ev.Reason)
	}
	want := corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if ev.InvolvedObject != want {
		t.Errorf("Event is about %+v, want %+v", ev.InvolvedObject, want)
	}
	if ev.Namespace != pod.Namespace || ev.Source.Host != testNode || ev.Source.Component == "" {
		t.Errorf("Event in namespace %q from %+v, want namespace %q from a component on %s", ev.Namespace, ev.Source, pod.Namespace, testNode)
	}
	if m := missing(ev.Message, msg...); m != nil {
		t.Errorf("Event message %q does not name %q", ev.Message, m)
	}
}

func TestMustIncludeOutsideTheAnnotationIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		mustInclude []string
		size        int
		msg         []string
	}{
		{
			name:        "whole GPU",
			pod:         newPod("train").on("4,5").init("prepare", ResourceWhole, 1).app("main", ResourceWhole, 2).obj(),
			mustInclude: wholeIDs(0), size: 2,
			msg: []string{"ml/train", "GPU 0"},
		},
		{
			name:        "share",
			pod:         newPod("infer").on("3").init("warmup", ResourceMilli, 250).app("main", ResourceMilli, 500).obj(),
			mustInclude: milliIDs(1, 0, 250), size: 500,
			msg: []string{"ml/infer", "GPU 3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			h.pods.add(tc.pod)
			h.podres.activate(tc.pod)
			res, _ := gpuRequest(t, tc.pod.Spec.Containers[0])
			h.kubelet.take(res, tc.mustInclude)
			avail := append(slices.Collect(maps.Keys(h.kubelet.available(res))), tc.mustInclude...)

			_, err := h.kubelet.preferred(t, res, avail, tc.mustInclude, tc.size)
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("GetPreferredAllocation error %v, want code FailedPrecondition", err)
			}
			if m := missing(errMsg(err), tc.msg...); m != nil {
				t.Errorf("error %q does not name %q", err, m)
			}
			checkSteeringEvent(t, h, tc.pod, tc.msg)
		})
	}
}

func TestPreferredAllocationWhenPodResourcesDoesNotAnswer(t *testing.T) {
	t.Run("refuse", func(t *testing.T) {
		h := start(t)
		h.podres.fail(errListFailed)
		_, err := h.kubelet.preferred(t, ResourceMilli, milliIDs(0, 0, 1000), nil, 250)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("GetPreferredAllocation error %v, want code Unavailable", err)
		}
	})
	t.Run("warn", func(t *testing.T) {
		h := start(t, warnOnMismatch)
		h.podres.fail(errListFailed)
		avail := append(milliIDs(0, 0, 100), milliIDs(4, 0, 1000)...)
		ids, err := h.kubelet.preferred(t, ResourceMilli, avail, nil, 250)
		if err != nil {
			t.Fatalf("GetPreferredAllocation: %v, want the plugin's own choice", err)
		}
		if got := gpuIndices(ResourceMilli, ids); len(ids) != 250 || !slices.Equal(got, []int{4}) {
			t.Errorf("preferred %d IDs on GPUs %v, want 250 on GPU 4 (the only one with room)", len(ids), got)
		}
	})
}
