package integration

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"golang.org/x/sync/errgroup"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// mixedPods is a reproducible mix of model pods: one, two and four whole
// GPUs and shares of 100..900 milli-GPU.
func mixedPods(prefix string, n int, seed uint64) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, 1))
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		switch x := rng.IntN(100); {
		case x < 35:
			pods[i] = gpuPod(podName(prefix, i), 1, 0, nil)
		case x < 45:
			pods[i] = gpuPod(podName(prefix, i), 2, 0, nil)
		case x < 50:
			pods[i] = gpuPod(podName(prefix, i), 4, 0, nil)
		default:
			pods[i] = gpuPod(podName(prefix, i), 0, int64(100*(1+rng.IntN(9))), nil)
		}
	}
	return pods
}

// createConcurrently creates nodes or pods with 8 clients in flight.
func createConcurrently[T any](t *testing.T, items []T, create func(context.Context, T) error) {
	t.Helper()
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(8)
	for _, it := range items {
		g.Go(func() error { return create(ctx, it) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func v100Nodes(n int) []localcluster.GPUNode {
	nodes := make([]localcluster.GPUNode, n)
	for i := range nodes {
		nodes[i] = localcluster.GPUNode{Name: podName("v100", i)}
	}
	return nodes
}

func createAll(t *testing.T, client kubernetes.Interface, nodes []localcluster.GPUNode, pods []*corev1.Pod) {
	t.Helper()
	createConcurrently(t, nodes, func(ctx context.Context, n localcluster.GPUNode) error {
		_, err := localcluster.CreateGPUNode(ctx, client, n)
		return err
	})
	createConcurrently(t, pods, func(ctx context.Context, p *corev1.Pod) error {
		_, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
}

// 500 pods created at once are all placed, each with GPU indices, and no
// GPU is over-committed.
func TestIntegrationScheduler500PodsAtOnce(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	startScheduler(t, c, gpupack.StrategyGPUFleet)
	// About 500 GPUs of demand on 640 GPUs.
	createAll(t, client, v100Nodes(80), mixedPods("mixed", 500, 7))
	gpuUse(t, waitScheduled(t, client, 500, 3*time.Minute), 8)
}

// A scheduler killed mid-run (SIGKILL, as a crashed pod) and started again
// rebuilds its ledger from the pods' gpufleet.io/gpu-indices annotations and
// never hands out a GPU twice.
func TestIntegrationSchedulerRestartKeepsLedger(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	first := mixedPods("first", 150, 11)
	createAll(t, client, v100Nodes(50), first) // about 300 GPUs of demand on 400 GPUs
	kill := startScheduler(t, c, gpupack.StrategyGPUFleet)
	waitScheduled(t, client, len(first), 2*time.Minute)

	// Kill it while the second batch is being scheduled.
	second := mixedPods("second", 150, 12)
	var created atomic.Int32
	go func() {
		for _, p := range second {
			if _, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err == nil {
				created.Add(1)
			}
		}
	}()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		bound := 0
		for _, p := range l.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound >= len(first)+20, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kill()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return int(created.Load()) == len(second), nil
	}); err != nil {
		t.Fatalf("creating the second batch: %v", err)
	}
	l, err := client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	boundAtKill := 0
	for _, p := range l.Items {
		if p.Spec.NodeName != "" {
			boundAtKill++
		}
	}
	t.Logf("%d of %d pods bound when the scheduler was killed", boundAtKill, len(first)+len(second))

	startScheduler(t, c, gpupack.StrategyGPUFleet)
	gpuUse(t, waitScheduled(t, client, len(first)+len(second), 2*time.Minute), 8)
}
