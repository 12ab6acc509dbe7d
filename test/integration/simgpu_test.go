// Package integration holds tests that run several gpufleet components
// together.
package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	agentapp "github.com/gpufleet/gpufleet/cmd/gpu-agent/app"
	serverapp "github.com/gpufleet/gpufleet/cmd/inference-server/app"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// Load on an inference server running on simulated GPUs makes exactly
// those GPUs busy, and the gpu-agent attributes the use to the server's
// pod: the chain the demo and the autoscaling tests stand on.
func TestIntegrationInferenceLoadShowsOnSimulatedGPU(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gpu-agent and an inference server under load for a few seconds")
	}
	simDir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	agentAddr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ao := agentapp.NewOptions()
	ao.NVML, ao.Listen, ao.NodeName, ao.SimDir = agentapp.NVMLMock, agentAddr, "gpu-node-0", simDir
	ao.PodResources, ao.Interval, ao.LabelNode = "", 200*time.Millisecond, false
	if err := ao.Validate(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agentapp.Run(ctx, ao) }()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	so := serverapp.NewOptions()
	so.ModelRepository = writeModel(t)
	so.Device, so.ShutdownDelay = serverapp.DeviceCPU, 0
	so.GPUSimDir, so.GPUIndices, so.PodNS, so.PodName = simDir, "1", "ml", "wide-7d9f"
	if err := so.Validate(); err != nil {
		t.Fatal(err)
	}
	serverDone := make(chan error, 1)
	go func() { serverDone <- serverapp.Run(ctx, so, l) }()
	t.Cleanup(func() {
		cancel()
		for name, done := range map[string]chan error{"gpu-agent": agentDone, "inference-server": serverDone} {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not stop", name)
			}
		}
	})

	url := "http://" + l.Addr().String() + "/v2/models/wide/infer"
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[4,8],"data":[[120,3,2,15,4.5,400,1,4],[60,1,1,80,20,90,0,2],[90,2,1,30,8,300,1,3],[200,5,3,5,2,900,1,5]]}]}`
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for range 4 {
		go func() {
			for loadCtx.Err() == nil {
				resp, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}()
	}

	start := time.Now()
	var metrics string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		m, err := testutil.Get(ctx, "http://"+agentAddr+"/metrics")
		if err != nil {
			return false, nil
		}
		metrics = m
		return seriesValue(m, `gpufleet_pod_gpu_utilization_ratio{container="inference-server",gpu="1",namespace="ml",pod="wide-7d9f"`) > 0 &&
			seriesValue(m, `gpufleet_gpu_utilization_ratio{gpu="1",`) > 0, nil
	})
	if err != nil {
		t.Fatalf("no GPU use seen for the server's pod on GPU 1: %v\n%s", err, testutil.Lines(metrics, "utilization_ratio"))
	}
	t.Logf("GPU use seen after %s", time.Since(start))
	// The server's weights are the memory its pod holds on GPU 1.
	if v := seriesValue(metrics, `gpufleet_pod_gpu_memory_used_bytes{container="inference-server",gpu="1",namespace="ml",pod="wide-7d9f"`); v != float64(wideWeightBytes) {
		t.Errorf("pod memory on GPU 1: %v, want the %d bytes of weights", v, wideWeightBytes)
	}
	// The other GPUs stay idle: the simulation follows real work only.
	for _, gpu := range []string{"0", "2", "7"} {
		if v := seriesValue(metrics, `gpufleet_gpu_utilization_ratio{gpu="`+gpu+`",`); v != 0 {
			t.Errorf("GPU %s utilization %v, want 0", gpu, v)
		}
	}
}

// wideWeightBytes is the float32 size of writeModel's weights.
const wideWeightBytes = 4 * (8*1024 + 1024 + 1024*1024 + 1024 + 1024 + 1)

// writeModel writes a repository with one model, 8-1024-1024-1 with random
// weights: enough work per batch that its GPU time shows at whole percents.
func writeModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	layers := backendtest.RandomStack(5, []int{8, 1024, 1024, 1}, []backend.Activation{backend.ReLU, backend.ReLU, backend.Identity})
	tensors := map[string]model.Tensor{}
	cfg := "name: wide\ninputs: [{name: features, datatype: FP32, shape: [8]}]\noutputs: [{name: y, datatype: FP32, shape: [1]}]\nlayers:\n"
	for i, l := range layers {
		tensors["w"+strconv.Itoa(i)] = model.Tensor{Shape: []int{l.In, l.Out}, Data: l.W}
		tensors["b"+strconv.Itoa(i)] = model.Tensor{Shape: []int{l.Out}, Data: l.B}
		cfg += "- {weights: w" + strconv.Itoa(i) + ", bias: b" + strconv.Itoa(i) + ", activation: " + string(l.Activation) + "}\n"
	}
	data, err := model.EncodeSafetensors(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "wide", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wide", "1", model.WeightsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wide", model.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// seriesValue is the series' value, or -1 if the agent does not export it.
func seriesValue(metrics, prefix string) float64 {
	if v, ok := testutil.SeriesValue(metrics, prefix); ok {
		return v
	}
	return -1
}
