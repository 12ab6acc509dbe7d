package app

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/cpu"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/cuda"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
	"github.com/gpufleet/gpufleet/pkg/inference/server"
	"github.com/gpufleet/gpufleet/pkg/inference/serving"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

// NewCommand returns the inference-server command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:          "inference-server",
		Short:        "Serve models over the Open Inference Protocol v2 with dynamic batching",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return serving.ListenAndRun(o.Listen, func(ctx context.Context, l net.Listener) error { return Run(ctx, o, l) })
		},
	}
	o.AddFlags(cmd.Flags())
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	cmd.Flags().AddGoFlagSet(logFlags)
	return cmd
}

// Run serves on l until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o *Options, l net.Listener) error {
	logger := klog.FromContext(ctx)
	models, err := model.Load(o.ModelRepository, model.Defaults{
		MaxBatchSize: o.MaxBatchSize, MaxQueueDelay: o.MaxQueueDelay,
		MaxQueueSize: max(o.MaxQueueSize, 16*o.MaxBatchSize), Version: o.DefaultVersion,
	})
	if err != nil {
		return err
	}
	be, err := openBackend(ctx, o.Device, o.CUDALibDirs)
	if err != nil {
		return err
	}
	defer func() { _ = be.Close() }()

	opts := server.Options{Models: models, Backend: be, MaxBodyBytes: o.MaxBodyBytes, BodyTimeout: o.BodyTimeout,
		Drift: server.DriftConfig{WindowRows: o.DriftWindowRows}}
	if o.GPUSimDir != "" {
		rep, err := simReporter(o)
		if err != nil {
			return err
		}
		defer func() { _ = rep.Close() }()
		// Weights stay resident on the device: that is the memory a GPU would hold.
		rep.SetMemory(weightBytes(models))
		opts.OnBatch = func(_, _ string, _ int, took time.Duration) { rep.AddBusy(took.Seconds()) }
		go flushEvery(ctx, rep, 200*time.Millisecond)
	}
	s, err := server.New(opts)
	if err != nil {
		return err
	}
	defer s.Close()
	logger.Info("Serving", "address", l.Addr().String(), "device", be.Name(), "models", s.Models())

	return serving.Serve(ctx, l, s.Handler(), s, o.ShutdownDelay, o.ShutdownTimeout)
}

// openBackend picks the device; auto says what it chose and why, and
// both say which CUDA libraries they loaded.
func openBackend(ctx context.Context, device string, libDirs []string) (backend.Backend, error) {
	logger := klog.FromContext(ctx)
	if device == DeviceCPU {
		return cpu.New(), nil
	}
	b, err := cuda.Open(cuda.WithLibraryDirs(libDirs...))
	switch {
	case err != nil && device == DeviceCUDA:
		return nil, fmt.Errorf("--device=cuda: %w", err)
	case err != nil:
		logger.Info("Device auto: using the CPU", "reason", err.Error())
		return cpu.New(), nil
	}
	cudart, cublas := b.Libraries()
	devices, version, free, total, infoErr := b.Info()
	kv := []any{"cudart", cudart, "cublas", cublas, "devices", devices,
		"runtime", fmt.Sprintf("%d.%d", version/1000, version%1000/10), "freeMiB", free >> 20, "totalMiB", total >> 20}
	if infoErr != nil {
		kv = append(kv, "infoErr", infoErr.Error())
	}
	if device == DeviceAuto {
		logger.Info("Device auto: using CUDA", append([]any{"reason", "a CUDA device and libcudart/libcublas were found"}, kv...)...)
	} else {
		logger.Info("Using CUDA", kv...)
	}
	return b, nil
}

func simReporter(o *Options) (*activity.Reporter, error) {
	gpus, err := o.gpuIndices()
	if err != nil {
		return nil, err
	}
	var pod *activity.PodIdentity
	if o.PodName != "" && o.PodNS != "" {
		pod = &activity.PodIdentity{Namespace: o.PodNS, Name: o.PodName, Container: "inference-server"}
	}
	return activity.NewReporter(o.GPUSimDir, gpus, pod)
}

// weightBytes is the float32 size of every loaded model version's weights.
func weightBytes(models map[string]*model.Model) uint64 {
	var n uint64
	for _, m := range models {
		for _, v := range m.Versions {
			for _, l := range v.Layers {
				n += 4 * uint64(len(l.W)+len(l.B))
			}
		}
	}
	return n
}

func flushEvery(ctx context.Context, rep *activity.Reporter, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := rep.Flush(); err != nil {
				klog.FromContext(ctx).V(2).Info("Reporting to the simulated GPU node", "err", err)
			}
		}
	}
}
