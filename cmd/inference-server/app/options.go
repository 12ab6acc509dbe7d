// Package app builds the inference-server command.
package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Devices.
const (
	DeviceAuto = "auto"
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// Options are the server's flags.
type Options struct {
	ModelRepository string
	Listen          string
	Device          string
	CUDALibDirs     []string

	MaxBatchSize   int
	MaxQueueDelay  time.Duration
	MaxQueueSize   int
	DefaultVersion string

	MaxBodyBytes    int64
	DriftWindowRows int
	BodyTimeout     time.Duration
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration

	GPUSimDir  string
	GPUIndices string
	PodName    string
	PodNS      string

	envErrs []error
}

// NewOptions returns the defaults; BATCH_SIZE and MODEL_VERSION, the
// seed's environment variables, set the defaults of their flags.
func NewOptions() *Options {
	o := &Options{
		ModelRepository: "models",
		Listen:          ":8000",
		Device:          DeviceAuto,
		MaxBatchSize:    32,
		MaxQueueDelay:   2 * time.Millisecond,
		MaxBodyBytes:    8 << 20,
		DriftWindowRows: 2000,
		BodyTimeout:     10 * time.Second,
		ShutdownDelay:   5 * time.Second,
		ShutdownTimeout: 30 * time.Second,
		DefaultVersion:  os.Getenv("MODEL_VERSION"),
		PodName:         os.Getenv("POD_NAME"),
		PodNS:           os.Getenv("POD_NAMESPACE"),
		GPUIndices:      os.Getenv("GPUFLEET_GPU_INDICES"),
	}
	if v := os.Getenv("BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			o.envErrs = append(o.envErrs, fmt.Errorf("BATCH_SIZE=%q: not a number", v))
		}
		o.MaxBatchSize = n
	}
	return o
}

// AddFlags adds the flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ModelRepository, "model-repository", o.ModelRepository, "Model repository: <name>/config.yaml and <name>/<version>/model.safetensors.")
	fs.StringVar(&o.Listen, "listen", o.Listen, "Address of the HTTP API (/v2/...) and /metrics.")
	fs.StringVar(&o.Device, "device", o.Device, "auto (CUDA if a GPU and its libraries are found, else CPU; logs why), cpu or cuda.")
	fs.StringSliceVar(&o.CUDALibDirs, "cuda-lib-dir", o.CUDALibDirs, "Directories searched first for libcudart and libcublas (CUDA 11, 12 or 13), e.g. a wheel's site-packages/nvidia/cu13/lib; then the dynamic loader, the CUDA toolkit and NVIDIA's Python wheels (pkg/inference/backend/cuda).")
	fs.IntVar(&o.MaxBatchSize, "max-batch-size", o.MaxBatchSize, "Rows per batch for models whose config sets none (default $BATCH_SIZE or 32).")
	fs.DurationVar(&o.MaxQueueDelay, "max-queue-delay", o.MaxQueueDelay, "How long a batch waits to fill, for models whose config sets none.")
	fs.IntVar(&o.MaxQueueSize, "max-queue-size", o.MaxQueueSize, "Rows that may wait per model version before requests get 429 (default 16 batches).")
	fs.StringVar(&o.DefaultVersion, "default-version", o.DefaultVersion, "Version served when a request names none and the config sets none (default $MODEL_VERSION, else the highest).")
	fs.IntVar(&o.DriftWindowRows, "drift-window-rows", o.DriftWindowRows, "Rows the drift metrics (PSI against each version's reference.json) cover; 0 turns them off.")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "Largest request body; larger gets 413.")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", o.BodyTimeout, "Time a client has to send its request body; slower gets 408.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "After SIGTERM: how long to keep serving with readiness false, so load balancers stop sending first.")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "After the delay: how long in-flight and queued requests may take to finish.")
	fs.StringVar(&o.GPUSimDir, "gpu-sim-dir", o.GPUSimDir, "Report batch busy time to a simulated GPU node (the gpu-agent's --sim-dir); for demos on machines without GPUs.")
	fs.StringVar(&o.GPUIndices, "gpu-indices", o.GPUIndices, "Simulated GPUs this server uses, e.g. 0,1 (default $GPUFLEET_GPU_INDICES).")
}

// Validate returns every problem with the options.
func (o *Options) Validate() error {
	errs := append([]error(nil), o.envErrs...)
	if o.ModelRepository == "" {
		errs = append(errs, errors.New("--model-repository must be set"))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen=%q: %w", o.Listen, err))
	}
	switch o.Device {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
	default:
		errs = append(errs, fmt.Errorf("--device=%q: want auto, cpu or cuda", o.Device))
	}
	if o.MaxBatchSize < 1 || o.MaxBatchSize > 4096 {
		errs = append(errs, fmt.Errorf("--max-batch-size=%d: want 1..4096", o.MaxBatchSize))
	}
	if o.MaxQueueDelay < 0 || o.MaxQueueDelay > time.Second {
		errs = append(errs, fmt.Errorf("--max-queue-delay=%s: want 0..1s", o.MaxQueueDelay))
	}
	if o.DriftWindowRows < 0 || o.DriftWindowRows > 1<<24 {
		errs = append(errs, fmt.Errorf("--drift-window-rows=%d: want 0 (off) to %d", o.DriftWindowRows, 1<<24))
	}
	if o.MaxQueueSize < 0 {
		errs = append(errs, fmt.Errorf("--max-queue-size=%d: must not be negative", o.MaxQueueSize))
	}
	if o.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-body-bytes=%d: want at least 1024", o.MaxBodyBytes))
	}
	if o.BodyTimeout <= 0 || o.ShutdownTimeout <= 0 || o.ShutdownDelay < 0 {
		errs = append(errs, errors.New("--body-timeout and --shutdown-timeout must be positive, --shutdown-delay not negative"))
	}
	if _, err := o.gpuIndices(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Options) gpuIndices() ([]int, error) {
	if o.GPUIndices == "" {
		if o.GPUSimDir != "" {
			return []int{0}, nil
		}
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(o.GPUIndices, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 63 {
			return nil, fmt.Errorf("--gpu-indices=%q: want comma-separated GPU indices like 0,1", o.GPUIndices)
		}
		out = append(out, n)
	}
	return out, nil
}
