package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// TestIntegrationE2ERealNode is the end-to-end story on a real kubelet
// (internal/stack with RealNode): gpufleet installed with `kubectl apply -k
// manifests/overlays/local` (gpufleet's own images: agent, adapter,
// scheduler), the model as a Deployment of the inference-server image
// (stack.RealDeployment) placed by gpufleet-scheduler, an HPA on
// requests_per_second. Real readiness probes decide which pods
// get load; scale-down stops pods with a real SIGTERM and grace period. A
// load step scales the Deployment up, every replica packed on its own GPU
// of the node, which gpu-agent's device plugin gives it (the server reads
// it from its environment); a low load scales it down, and no request
// fails.
func TestIntegrationE2ERealNode(t *testing.T) {
	began := time.Now()
	s, load, _ := realStackWithLoad(t)
	client, node := s.Client, s.Nodes[0].Name
	ctx := t.Context()

	load.SetRate(stepRPS)
	step := time.Now()
	waitDeployment(t, client, "at 4 ready replicas", 2*time.Minute, func(want, ready int32, _ int) bool { return want == maxReplicas && ready == maxReplicas })
	scaleUp := time.Since(step)
	t.Logf("%d replicas ready %.1f s after the load step", maxReplicas, scaleUp.Seconds())
	pods, err := s.ModelPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gpus := map[string]string{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		idx := p.Annotations[names.AnnotationGPUIndices]
		if p.Spec.NodeName != node || idx == "" {
			t.Errorf("pod %s on %q with GPU indices %q", p.Name, p.Spec.NodeName, idx)
		}
		if _, ok := localcluster.PodIPOnBridge(&p); !ok {
			t.Errorf("pod %s has address %q, not on the node's bridge", p.Name, p.Status.PodIP)
		}
		if other, ok := gpus[idx]; ok {
			t.Errorf("pods %s and %s share GPU %s", other, p.Name, idx)
		}
		gpus[idx] = p.Name
		// The server learns its GPU from the environment gpu-agent's device
		// plugin gave its container, not from a flag.
		for _, cs := range p.Status.ContainerStatuses {
			env, err := localcluster.ContainerEnv(cs.ContainerID)
			if err != nil {
				t.Errorf("pod %s: %v", p.Name, err)
				continue
			}
			if got := env["GPUFLEET_GPU_INDICES"]; got != idx {
				t.Errorf("pod %s container %s: GPUFLEET_GPU_INDICES=%q from the device plugin, annotation %q", p.Name, cs.Name, got, idx)
			}
		}
		for _, c := range p.Spec.Containers {
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--gpu-indices") {
					t.Errorf("pod %s is told its GPUs by a flag (%s), not by the device plugin", p.Name, a)
				}
			}
		}
	}
	t.Logf("model pods by GPU: %v", gpus)

	load.SetRate(lowRPS)
	down := time.Now()
	waitDeployment(t, client, "scaled down to 1 replica, the others gone", 2*time.Minute, func(want, ready int32, pods int) bool { return want == 1 && ready == 1 && pods == 1 })
	scaleDown := time.Since(down)
	t.Logf("scaled down to 1 replica, the others stopped, %.1f s after the load dropped", scaleDown.Seconds())
	load.SetRate(0)
	failed := load.Failed()
	if failed > 0 {
		t.Errorf("%d of %d requests failed, last: %s", failed, load.Sent(), load.LastError())
	}
	t.Logf("%d requests sent; wall time %.1f s", load.Sent(), time.Since(began).Seconds())
	summary(t, "real", failed, scaleUp, scaleDown)
	checkCanary(t, s)
}

// summary prints the contract line of make e2e and writes it where the
// Makefile reads it ($GPUFLEET_E2E_SUMMARY, one line per node kind).
func summary(t *testing.T, node string, failed int64, up, down time.Duration) {
	line := fmt.Sprintf("e2e node=%s failed_requests=%d scale_up_s=%.1f scale_down_s=%.1f", node, failed, up.Seconds(), down.Seconds())
	t.Log(line)
	if dir := os.Getenv("GPUFLEET_E2E_SUMMARY"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, node), []byte(line+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// realStackWithLoad skips t where no real node can run, else starts the
// stack on the real node with the model deployed, a load generator at rate
// 0 following its pods, and the HPA. The load and anything started in
// background run until t ends.
func realStackWithLoad(t *testing.T) (s *stack.Stack, load *loadgen.Generator, background *runUntilEnd) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: starts a control plane and a real node; run without -short")
	}
	if err := stack.RealNodeUnavailable(); err != nil {
		clustertest.RealNodeUnavailable(t, err)
	}
	s = startStack(t, stack.Options{RealNode: true, Progress: func(step string) { t.Log(step) }})
	ctx, cancel := context.WithCancel(context.Background())
	background = &runUntilEnd{ctx: ctx}
	t.Cleanup(func() { cancel(); background.wg.Wait() })
	load = deployWithLoad(t, ctx, s, &background.wg)
	if err := s.CreateHPA(t.Context(), maxReplicas, targetRPS); err != nil {
		t.Fatal(err)
	}
	return s, load, background
}

// runUntilEnd is the context and wait group of goroutines that run until
// the test ends.
type runUntilEnd struct {
	ctx context.Context
	wg  sync.WaitGroup
}
