package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	adapterapp "github.com/gpufleet/gpufleet/cmd/metrics-adapter/app"
	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// schedulerConfigEnv makes this test binary a scheduler process (see
// TestMain): the restart test SIGKILLs it like a crashed scheduler pod.
const schedulerConfigEnv = "GPUFLEET_TEST_SCHEDULER_CONFIG"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(adapterArgsEnv); ok {
		cmd := adapterapp.NewCommand()
		cmd.SetArgs(strings.Split(args, "\x1f"))
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if cfg := os.Getenv(schedulerConfigEnv); cfg != "" {
		if err := schedtest.Run(context.Background(), cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startScheduler runs gpufleet's scheduler with the given strategy as a
// child process (this test binary, see TestMain; one scheduler per process,
// as in production) until the test ends or the returned kill is called.
// Its log is printed if the test fails.
func startScheduler(t *testing.T, c *localcluster.Cluster, strategy string) (kill func()) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := schedtest.WriteConfig(dir, c.KubeconfigPath, false, schedtest.GPUPackProfile(schedtest.SchedulerName, strategy))
	if err != nil {
		t.Fatal(err)
	}
	// Started from a thread kept for it (localcluster.StartProcess): a
	// Pdeathsig child started from any thread died whenever the Go runtime
	// ended that thread, which it does after a goroutine that locked it.
	p, err := localcluster.StartProcess("scheduler", os.Args[0], []string{"-test.run=^$"},
		[]string{schedulerConfigEnv + "=" + cfg}, filepath.Join(dir, "scheduler.log"))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() { once.Do(func() { _ = p.Kill() }) }
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("scheduler log (%s):\n%s", filepath.Join(dir, "scheduler.log"), p.LogTail(60))
		}
	})
	return kill
}

// gpuPod is a pod for gpufleet-scheduler asking for whole GPUs (gpus > 0)
// or a share of one (milli > 0).
func gpuPod(name string, gpus, milli int64, annotations map[string]string) *corev1.Pod {
	return schedtest.GPUPod("default", name, schedtest.SchedulerName, gpus, milli, annotations)
}

func createNodes(t *testing.T, client kubernetes.Interface, nodes ...localcluster.GPUNode) {
	t.Helper()
	for _, n := range nodes {
		if _, err := localcluster.CreateGPUNode(t.Context(), client, n); err != nil {
			t.Fatal(err)
		}
	}
}

func createPods(t *testing.T, client kubernetes.Interface, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitScheduled waits until every pod is bound, or fails listing the ones
// still pending and why.
func waitScheduled(t *testing.T, client kubernetes.Interface, want int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods = l.Items
		bound := 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == want, nil
	})
	if err != nil {
		var pending []string
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				pending = append(pending, p.Name+": "+unschedulableMessage(&p))
			}
		}
		t.Fatalf("waiting for %d pods to be bound: %v; pending: %s", want, err, strings.Join(pending, "; "))
	}
	return pods
}

// waitUnschedulable waits until the pod's PodScheduled condition is False
// and returns its message.
func waitUnschedulable(t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	var msg string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		msg = unschedulableMessage(p)
		return msg != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s never reported unschedulable: %v", name, err)
	}
	return msg
}

func unschedulableMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return c.Message
		}
	}
	return ""
}

// gpuUse is the milli-GPU bound pods hold per node and GPU, from their
// gpufleet.io/gpu-indices annotations; it fails the test if a bound GPU pod
// has no valid annotation or a GPU is over-committed.
func gpuUse(t *testing.T, pods []corev1.Pod, gpusPerNode int) map[string][]int64 {
	t.Helper()
	use := map[string][]int64{}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			continue
		}
		r, err := gpupack.RequestFromPod(&p)
		if err != nil || !r.WantsGPU() {
			continue
		}
		gpus, err := gpupack.ParseIndices(p.Annotations[names.AnnotationGPUIndices], gpusPerNode)
		if err != nil || len(gpus) != r.Count() {
			t.Errorf("bound pod %s (%s) has GPU indices %q: %v", p.Name, r, p.Annotations[names.AnnotationGPUIndices], err)
			continue
		}
		if use[p.Spec.NodeName] == nil {
			use[p.Spec.NodeName] = make([]int64, gpusPerNode)
		}
		for _, g := range gpus {
			use[p.Spec.NodeName][g] += r.PerGPU()
		}
	}
	for node, gpus := range use {
		for g, m := range gpus {
			if m > gpupack.MilliPerGPU {
				t.Errorf("GPU %d of node %s over-committed: %d milli-GPU", g, node, m)
			}
		}
	}
	return use
}

func podName(prefix string, i int) string { return prefix + "-" + strconv.Itoa(i) }
