package integration

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// Whole-GPU model pods fill one V100 node before the next one is opened,
// each on its own GPU; fractional pods share GPUs without over-committing
// any, and a whole-GPU pod never lands on a shared GPU.
func TestIntegrationSchedulerPacksGPUs(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	createNodes(t, client, localcluster.GPUNode{Name: "v100-a"}, localcluster.GPUNode{Name: "v100-b"}, localcluster.GPUNode{Name: "v100-c"})
	startScheduler(t, c, gpupack.StrategyGPUFleet)

	var pods []*corev1.Pod
	for i := range 10 {
		pods = append(pods, gpuPod(podName("whole", i), 1, 0, nil))
	}
	createPods(t, client, pods...)
	bound := waitScheduled(t, client, 10, time.Minute)
	perNode := map[string]int{}
	for _, p := range bound {
		perNode[p.Spec.NodeName]++
	}
	if len(perNode) != 2 || !hasCount(perNode, 8) || !hasCount(perNode, 2) {
		t.Fatalf("10 one-GPU pods on 8-GPU nodes: per node %v, want one node full (8) and 2 on a second", perNode)
	}
	use := gpuUse(t, bound, 8)
	full := ""
	for n, c := range perNode {
		if c == 8 {
			full = n
		}
	}
	for g, m := range use[full] {
		if m != 1000 {
			t.Errorf("full node %s GPU %d holds %d milli-GPU, want 1000", full, g, m)
		}
	}

	// Shares: 7 pods of 300 milli-GPU fit three to a GPU on the partly used
	// node, and a whole-GPU pod still finds a free GPU, not a shared one.
	var shares []*corev1.Pod
	for i := range 7 {
		shares = append(shares, gpuPod(podName("share", i), 0, 300, nil))
	}
	createPods(t, client, shares...)
	createPods(t, client, gpuPod("whole-after-shares", 1, 0, nil))
	bound = waitScheduled(t, client, 18, time.Minute)
	gpuUse(t, bound, 8) // fails the test on any over-committed GPU
	sharedGPUs := map[string]bool{}
	for _, p := range bound {
		if strings.HasPrefix(p.Name, "share-") {
			if p.Spec.NodeName == full {
				t.Errorf("share pod %s went to the full node", p.Name)
			}
			sharedGPUs[p.Spec.NodeName+"/"+p.Annotations[names.AnnotationGPUIndices]] = true
		}
	}
	if len(sharedGPUs) != 3 {
		t.Errorf("7 pods of 300 milli-GPU should share 3 GPUs (3+3+1), got %v", sharedGPUs)
	}
	for _, p := range bound {
		if p.Name == "whole-after-shares" && sharedGPUs[p.Spec.NodeName+"/"+p.Annotations[names.AnnotationGPUIndices]] {
			t.Errorf("whole-GPU pod placed on a shared GPU %s/%s", p.Spec.NodeName, p.Annotations[names.AnnotationGPUIndices])
		}
	}
}

func hasCount(m map[string]int, v int) bool {
	for _, c := range m {
		if c == v {
			return true
		}
	}
	return false
}

// GPU model constraints hold, and pods that cannot be placed say why per
// node class; malformed requests name the bad value.
func TestIntegrationSchedulerModelsAndReasons(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	createNodes(t, client,
		localcluster.GPUNode{Name: "v100m16-a", Model: "V100M16"},
		localcluster.GPUNode{Name: "v100m32-a", Model: "V100M32", GPUs: 4},
		localcluster.GPUNode{Name: "t4-a", Model: "T4", GPUs: 2},
		localcluster.GPUNode{Name: "t4-b", Model: "T4", GPUs: 2},
	)
	startScheduler(t, c, gpupack.StrategyGPUFleet)

	createPods(t, client,
		gpuPod("wants-v100m32", 2, 0, map[string]string{names.AnnotationGPUModel: "V100M32"}),
		gpuPod("wants-t4", 0, 500, map[string]string{names.AnnotationGPUModel: "T4"}),
		gpuPod("wants-any-v100", 1, 0, map[string]string{names.AnnotationGPUModel: "V100M16|V100M32"}),
	)
	bound := waitScheduled(t, client, 3, time.Minute)
	for _, p := range bound {
		switch p.Name {
		case "wants-v100m32":
			if p.Spec.NodeName != "v100m32-a" {
				t.Errorf("%s on %s", p.Name, p.Spec.NodeName)
			}
		case "wants-t4":
			if !strings.HasPrefix(p.Spec.NodeName, "t4-") {
				t.Errorf("%s on %s", p.Name, p.Spec.NodeName)
			}
		case "wants-any-v100":
			if !strings.HasPrefix(p.Spec.NodeName, "v100") {
				t.Errorf("%s on %s", p.Name, p.Spec.NodeName)
			}
		}
	}
	gpuUse(t, bound, 8)

	// A share larger than any T4 has left after two 600-milli pods, limited
	// to T4 and V100M16: the message counts nodes per reason.
	createPods(t, client,
		gpuPod("t4-fill-0", 0, 600, map[string]string{names.AnnotationGPUModel: "T4"}),
		gpuPod("t4-fill-1", 0, 600, map[string]string{names.AnnotationGPUModel: "T4"}),
		gpuPod("t4-fill-2", 0, 600, map[string]string{names.AnnotationGPUModel: "T4"}),
	)
	waitScheduled(t, client, 6, time.Minute)
	createPods(t, client, gpuPod("too-big-for-t4", 0, 600, map[string]string{names.AnnotationGPUModel: "T4|A10"}))
	msg := waitUnschedulable(t, client, "too-big-for-t4")
	for _, want := range []string{
		"2 node(s) had no single GPU with 600 free milli-GPU",
		"1 node(s) had GPU model V100M16 (pod requires T4|A10)",
		"1 node(s) had GPU model V100M32 (pod requires T4|A10)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("unschedulable message %q lacks %q", msg, want)
		}
	}

	for _, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{gpuPod("bad-model", 1, 0, map[string]string{names.AnnotationGPUModel: "V100M16||T4"}), `"V100M16||T4"`},
		{gpuPod("too-much-milli", 0, 1500, nil), "1500"},
	} {
		createPods(t, client, tc.pod)
		if msg := waitUnschedulable(t, client, tc.pod.Name); !strings.Contains(msg, tc.want) {
			t.Errorf("pod %s: message %q does not name the bad value %s", tc.pod.Name, msg, tc.want)
		}
	}
}

// A pod pending for want of GPUs is retried as soon as a GPU pod leaves or a
// fitting node arrives (queueing hints), not after the scheduler's periodic
// flush of unschedulable pods (5 minutes).
func TestIntegrationSchedulerRetriesWhenGPUsFree(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	createNodes(t, client, localcluster.GPUNode{Name: "v100-a", GPUs: 2})
	startScheduler(t, c, gpupack.StrategyGPUFleet)

	createPods(t, client, gpuPod("holder", 2, 0, nil))
	waitScheduled(t, client, 1, 30*time.Second)
	createPods(t, client, gpuPod("waiter", 1, 0, nil), gpuPod("wants-t4", 0, 500, map[string]string{names.AnnotationGPUModel: "T4"}))
	waitUnschedulable(t, client, "waiter")
	waitUnschedulable(t, client, "wants-t4")

	if err := client.CoreV1().Pods("default").Delete(t.Context(), "holder", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	createNodes(t, client, localcluster.GPUNode{Name: "t4-a", Model: "T4", GPUs: 1})
	for _, p := range waitScheduled(t, client, 2, 20*time.Second) {
		if p.Name == "wants-t4" && p.Spec.NodeName != "t4-a" {
			t.Errorf("wants-t4 on %s", p.Spec.NodeName)
		}
	}
}
