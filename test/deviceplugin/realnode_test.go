package deviceplugin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/internal/deviceplugintest"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// start runs the environment for the test, or skips with the reason the
// machine cannot (fails instead under GPUFLEET_REQUIRE_REAL_NODE=1).
func start(t *testing.T) *deviceplugintest.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a control plane and a real node; run without -short")
	}
	if err := deviceplugintest.Unavailable(); err != nil {
		clustertest.RealNodeUnavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	e, err := deviceplugintest.Start(ctx, "")
	t.Cleanup(func() {
		if t.Failed() && e.Node != nil {
			t.Logf("agent log:\n%s\nreal node logs:\n%s", e.AgentLog(context.Background(), 40), e.Node.Logs(40))
		}
		if err := e.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestIntegrationDevicePluginShapes: every shape a model pod can ask for
// gets exactly its annotated GPUs: shares, whole GPUs, several containers,
// init containers. Two batches, as all shapes together need more than the
// node's 8 GPUs.
func TestIntegrationDevicePluginShapes(t *testing.T) {
	e := start(t)
	batches := [][]deviceplugintest.Shape{
		{{Milli: 250}, {Milli: 500}, {Milli: 1000}, {GPUs: 4}, {Milli: 100, Containers: 2}, {Milli: 200, InitMilli: 300}},
		{{GPUs: 1}, {GPUs: 2}, {GPUs: 1, Containers: 2}, {GPUs: 1, InitGPUs: 1}},
	}
	for b, shapes := range batches {
		started, err := e.CreateAll(t.Context(), fmt.Sprintf("shape%d", b), shapes, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range started {
			if err := e.Check(t.Context(), s.Pod); err != nil {
				t.Errorf("%s: %v", shapes[i], err)
			} else {
				t.Logf("%s: pod %s on GPUs %s: exact", shapes[i], s.Pod.Name, s.Pod.Annotations["gpufleet.io/gpu-indices"])
			}
		}
		if err := e.DeleteAll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationDevicePluginConcurrent: 100 pods of mixed shapes created
// at once each get exactly their annotated GPUs.
func TestIntegrationDevicePluginConcurrent(t *testing.T) {
	e := start(t)
	started, err := e.CreateAll(t.Context(), "mixed", deviceplugintest.MixedShapes(100), 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, s := range started {
		if err := e.Check(t.Context(), s.Pod); err != nil {
			bad++
			t.Error(err)
		}
	}
	t.Logf("%d pods, %d mismatches", len(started), bad)
}
