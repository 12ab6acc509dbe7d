package deviceplugin

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// holding is a pod that already holds devices when the test's pod comes.
type holding struct {
	pod, on, resource string
	ids               []string
}

func (h *harness) holdAll(held []holding) {
	h.t.Helper()
	for _, x := range held {
		pod := newPod(x.pod).on(x.on).app("main", x.resource, int64(len(x.ids))).obj()
		h.hold(pod, "main", x.resource, x.ids)
	}
}

func TestPreferredAllocationSteersToTheAnnotatedGPUs(t *testing.T) {
	for _, tc := range []struct {
		name string
		held []holding
		pod  *corev1.Pod
	}{
		{
			name: "250 milli where best fit would choose another GPU",
			held: []holding{{pod: "batch", on: "2", resource: ResourceMilli, ids: milliIDs(2, 0, 700)}},
			pod:  newPod("infer").on("5").app("main", ResourceMilli, 250).obj(),
		},
		{
			name: "500 milli on a half-shared GPU while others are free",
			held: []holding{{pod: "notebook", on: "5", resource: ResourceMilli, ids: milliIDs(5, 0, 500)}},
			pod:  newPod("infer").on("5").app("main", ResourceMilli, 500).obj(),
		},
		{
			name: "1000 milli",
			pod:  newPod("infer").on("6").app("main", ResourceMilli, 1000).obj(),
		},
		{
			name: "1 whole GPU",
			pod:  newPod("train").on("6").app("main", ResourceWhole, 1).obj(),
		},
		{
			name: "2 whole GPUs without an NVLink between them",
			pod:  newPod("train").on("3,4").app("main", ResourceWhole, 2).obj(),
		},
		{
			name: "4 whole GPUs across both quads",
			pod:  newPod("train").on("1,2,5,6").app("main", ResourceWhole, 4).obj(),
		},
		{
			name: "8 whole GPUs",
			pod:  newPod("train").on("0,1,2,3,4,5,6,7").app("main", ResourceWhole, 8).obj(),
		},
		{
			name: "2 whole GPUs beside a pod holding two",
			held: []holding{{pod: "trainer", on: "0,1", resource: ResourceWhole, ids: wholeIDs(0, 1)}},
			pod:  newPod("train").on("2,3").app("main", ResourceWhole, 2).obj(),
		},
		{
			name: "two containers of 250 milli on one GPU",
			pod:  newPod("infer").on("4").app("model", ResourceMilli, 250).app("tokenizer", ResourceMilli, 250).obj(),
		},
		{
			name: "two containers of one whole GPU each",
			pod:  newPod("train").on("2,6").app("worker-0", ResourceWhole, 1).app("worker-1", ResourceWhole, 1).obj(),
		},
		{
			name: "init container's share reused by a larger app container",
			pod:  newPod("infer").on("3").init("warmup", ResourceMilli, 250).app("main", ResourceMilli, 500).obj(),
		},
		{
			name: "init container's GPU reused by an app container with two",
			pod:  newPod("train").on("4,5").init("prepare", ResourceWhole, 1).app("main", ResourceWhole, 2).obj(),
		},
		{
			name: "sidecar and app container sharing a GPU",
			pod:  newPod("infer").on("1").sidecar("proxy", ResourceMilli, 250).app("main", ResourceMilli, 250).obj(),
		},
		{
			name: "GPU sidecar, then a plain init container with a share, CPU-only app",
			held: []holding{{pod: "batch", on: "5", resource: ResourceMilli, ids: milliIDs(5, 0, 700)}},
			pod:  newPod("infer").on("3").sidecar("model", ResourceMilli, 250).init("warmup", ResourceMilli, 250).app("api", "", 0).obj(),
		},
		{
			name: "share for an init container only",
			pod:  newPod("convert").on("7").init("convert", ResourceMilli, 500).app("serve", "", 0).obj(),
		},
		{
			name: "whole GPU for an init container only",
			pod:  newPod("convert").on("7").init("convert", ResourceWhole, 1).app("serve", "", 0).obj(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			h.holdAll(tc.held)

			allocs := h.mustAdmit(tc.pod)
			checkSteered(t, tc.pod, allocs)

			for name, err := range h.preStart(allocs) {
				t.Errorf("PreStartContainer for %s: %v", name, err)
			}
			var verified float64
			for _, res := range []string{ResourceMilli, ResourceWhole} {
				verified += metric(t, h.plugin, "gpufleet_deviceplugin_verified_containers_total", "resource", res)
				for _, m := range []string{"mismatches_total", "unverified_containers_total", "steering_failures_total", "ambiguous_admissions_total", "unidentified_admissions_total"} {
					if got := metric(t, h.plugin, "gpufleet_deviceplugin_"+m, "resource", res); got != 0 {
						t.Errorf("%s{resource=%q} = %v, want 0", m, res, got)
					}
				}
			}
			if want := float64(len(allocs)); verified != want {
				t.Errorf("verified_containers_total = %v, want %v (every GPU container checked)", verified, want)
			}
			if n := h.events.count(); n != 0 {
				t.Errorf("%d Events posted, want none", n)
			}
		})
	}
}

// checkSteered checks that every GPU container of pod got exactly its
// request, on the GPUs of the pod's annotation: a share on the one annotated
// GPU, whole GPUs making up the annotated set; that the plugin's preference
// was a full one holding the kubelet's must-include IDs; and that Allocate
// told the container its GPUs.
func checkSteered(t *testing.T, pod *corev1.Pod, allocs map[string]*containerAlloc) {
	t.Helper()
	annotated := parseIndices(t, pod.Annotations[names.AnnotationGPUIndices])
	var whole []int
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		res, n := gpuRequest(t, c)
		if n == 0 {
			continue
		}
		a := allocs[c.Name]
		if a == nil {
			t.Errorf("container %s got no devices", c.Name)
			continue
		}
		if len(a.devices) != n {
			t.Errorf("container %s got %d IDs, requested %d", c.Name, len(a.devices), n)
		}
		if a.asked {
			if len(a.preferred) != n {
				t.Errorf("container %s: preferred %d IDs for a request of %d", c.Name, len(a.preferred), n)
			}
			for _, id := range a.mustInclude {
				if !slices.Contains(a.preferred, id) {
					t.Errorf("container %s: preference lacks must-include ID %s", c.Name, id)
				}
			}
		}
		got := gpuIndices(res, a.devices)
		for _, g := range got {
			if !slices.Contains(annotated, g) {
				t.Errorf("container %s got GPU %d, annotation names %v", c.Name, g, annotated)
			}
		}
		if res == ResourceMilli && len(got) != 1 {
			t.Errorf("container %s: share spread over GPUs %v", c.Name, got)
		}
		if res == ResourceWhole {
			whole = append(whole, got...)
		}
		if env := parseIndices(t, a.resp.GetEnvs()[EnvGPUIndices]); !slices.Equal(env, got) {
			t.Errorf("container %s: %s=%v, devices are on GPUs %v", c.Name, EnvGPUIndices, env, got)
		}
	}
	if whole != nil {
		slices.Sort(whole)
		if whole = slices.Compact(whole); !slices.Equal(whole, annotated) {
			t.Errorf("pod got whole GPUs %v, annotation names %v", whole, annotated)
		}
	}
}
