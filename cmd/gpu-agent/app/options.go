// Package app builds the gpu-agent command.
package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/gpumodel"
)

// NVML modes.
const (
	NVMLAuto = "auto"
	NVMLReal = "nvml"
	NVMLMock = "mock"
)

// Options are the agent's flags.
type Options struct {
	NVML     string
	Listen   string
	NodeName string
	Interval time.Duration

	Kubeconfig   string
	LabelNode    bool
	LabelPeriod  time.Duration
	PodResources string
	PodRefresh   time.Duration
	ProcRoot     string

	SimDir   string
	SimGPUs  int
	SimModel string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		NVML:         NVMLAuto,
		Listen:       ":9400",
		NodeName:     os.Getenv("NODE_NAME"),
		Interval:     time.Second,
		LabelNode:    true,
		LabelPeriod:  5 * time.Minute,
		PodResources: attribution.DefaultPodResourcesSocket,
		PodRefresh:   5 * time.Second,
		ProcRoot:     attribution.DefaultProcRoot,
		SimDir:       filepath.Join(os.TempDir(), "gpufleet-sim"),
		SimGPUs:      8,
		SimModel:     "V100M16",
	}
}

// Flags returns the named flag sets.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("gpu")
	fs.StringVar(&o.NVML, "nvml", o.NVML, "NVML source: auto or nvml (the driver's libnvidia-ml.so.1; fails clearly if missing, never falls back), or mock (a simulated node).")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "How often to sample every GPU.")

	fs = fss.FlagSet("serving")
	fs.StringVar(&o.Listen, "listen", o.Listen, "Address for /metrics, /healthz and /readyz.")

	fs = fss.FlagSet("kubernetes")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "Name of this node (default $NODE_NAME).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file; empty: in-cluster configuration when running in a pod, else no API server (no node labels, no pod names for shared GPUs).")
	fs.BoolVar(&o.LabelNode, "label-node", o.LabelNode, "Label this node with its GPU inventory (needs get and patch on nodes).")
	fs.DurationVar(&o.LabelPeriod, "label-period", o.LabelPeriod, "How often to check the node's labels again.")
	fs.StringVar(&o.PodResources, "pod-resources-socket", o.PodResources, "kubelet PodResources socket, for whole-GPU attribution; empty disables.")
	fs.DurationVar(&o.PodRefresh, "pod-resources-refresh", o.PodRefresh, "How often to re-read GPU allocations from the kubelet.")
	fs.StringVar(&o.ProcRoot, "proc-root", o.ProcRoot, "The host's /proc, for per-process attribution of shared GPUs.")

	fs = fss.FlagSet("simulation (--nvml=mock)")
	fs.StringVar(&o.SimDir, "sim-dir", o.SimDir, "Directory where local processes report GPU activity and faults are injected (see pkg/nvml/sim).")
	fs.IntVar(&o.SimGPUs, "sim-gpus", o.SimGPUs, "GPUs of the simulated node.")
	fs.StringVar(&o.SimModel, "sim-model", o.SimModel, "GPU model of the simulated node.")
	return fss
}

// AddFlags adds every flag set to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
}

// Validate returns every problem with the options.
func (o *Options) Validate() error {
	var errs []error
	switch o.NVML {
	case NVMLAuto, NVMLReal, NVMLMock:
	default:
		errs = append(errs, fmt.Errorf("--nvml=%q: want auto, nvml or mock", o.NVML))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen=%q: %w", o.Listen, err))
	}
	if o.Interval < 100*time.Millisecond || o.Interval > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--interval=%s: want 100ms..5m", o.Interval))
	}
	if o.LabelPeriod < time.Second {
		errs = append(errs, fmt.Errorf("--label-period=%s: want at least 1s", o.LabelPeriod))
	}
	if o.PodRefresh < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--pod-resources-refresh=%s: want at least 100ms", o.PodRefresh))
	}
	if o.NVML == NVMLMock {
		if o.SimGPUs < 1 || o.SimGPUs > 16 {
			errs = append(errs, fmt.Errorf("--sim-gpus=%d: want 1..16", o.SimGPUs))
		}
		if _, err := gpumodel.Lookup(o.SimModel); err != nil {
			errs = append(errs, fmt.Errorf("--sim-model: %w", err))
		}
		if o.SimDir == "" {
			errs = append(errs, errors.New("--sim-dir must not be empty with --nvml=mock"))
		}
	}
	return errors.Join(errs...)
}
