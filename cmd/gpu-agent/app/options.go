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

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/deviceplugin"
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

	DevicePlugin           bool
	DevicePluginResources  []string
	DevicePluginDir        string
	DevicePluginOnMismatch string
	CDIKind                string
	CDISpecDir             string
	VisibleDevicesEnv      bool
	MPS                    bool
	MPSPipeDir             string
}

// CDIKindAuto picks the CDI kind from --nvml: the NVIDIA container
// toolkit's nvidia.com/gpu on real GPUs, the agent's own spec of simulated
// GPUs with --nvml=mock. CDIKindNone passes no CDI devices.
const (
	CDIKindAuto = "auto"
	CDIKindNone = "none"
)

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

		DevicePluginResources:  []string{deviceplugin.ResourceMilli},
		DevicePluginDir:        pluginapi.DevicePluginPath,
		DevicePluginOnMismatch: deviceplugin.OnMismatchRefuse,
		CDIKind:                CDIKindAuto,
		CDISpecDir:             "/var/run/cdi",
		VisibleDevicesEnv:      true,
		MPSPipeDir:             "/tmp/nvidia-mps",
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
	fs.BoolVar(&o.LabelNode, "label-node", o.LabelNode, "Label this node with its GPU inventory, and annotate its unhealthy GPUs (gpufleet.io/gpu.unhealthy) for the scheduler (needs get and patch on nodes).")
	fs.DurationVar(&o.LabelPeriod, "label-period", o.LabelPeriod, "How often to check the node's labels again.")
	fs.StringVar(&o.PodResources, "pod-resources-socket", o.PodResources, "kubelet PodResources socket, for whole-GPU attribution; empty disables.")
	fs.DurationVar(&o.PodRefresh, "pod-resources-refresh", o.PodRefresh, "How often to re-read GPU allocations from the kubelet.")
	fs.StringVar(&o.ProcRoot, "proc-root", o.ProcRoot, "The host's /proc, for per-process attribution of shared GPUs.")

	fs = fss.FlagSet("device plugin")
	fs.BoolVar(&o.DevicePlugin, "device-plugin", o.DevicePlugin, "Be the node's kubelet device plugin: advertise --device-plugin-resources and give each container the GPUs of its pod's gpufleet.io/gpu-indices annotation (needs the API server, --node-name and --pod-resources-socket).")
	fs.StringSliceVar(&o.DevicePluginResources, "device-plugin-resources", o.DevicePluginResources, "Resources to advertise: gpufleet.io/gpu-milli (1000 per GPU) and/or nvidia.com/gpu (one per GPU; turn NVIDIA's device plugin off on the node first).")
	fs.StringVar(&o.DevicePluginDir, "device-plugin-dir", o.DevicePluginDir, "The kubelet's device-plugin directory (its kubelet.sock and the plugin's sockets).")
	fs.StringVar(&o.DevicePluginOnMismatch, "device-plugin-on-mismatch", o.DevicePluginOnMismatch, "When a container's devices are not its annotated GPUs, or the annotated GPUs cannot be had: refuse (the container does not start; an Event says why) or warn (Event and counter only).")
	fs.StringVar(&o.CDIKind, "cdi-kind", o.CDIKind, "CDI kind each GPU is passed as (<kind>=<UUID>): auto (nvidia.com/gpu; with --nvml=mock the agent's own spec of the simulated GPUs, sim.gpufleet.io/gpu), none, or a kind.")
	fs.StringVar(&o.CDISpecDir, "cdi-spec-dir", o.CDISpecDir, "Where the container runtime reads CDI specs; with --nvml=mock the agent writes the simulated GPUs' spec there.")
	fs.BoolVar(&o.VisibleDevicesEnv, "visible-devices-env", o.VisibleDevicesEnv, "Also set NVIDIA_VISIBLE_DEVICES to the container's GPU UUIDs (for runtimes without CDI).")
	fs.BoolVar(&o.MPS, "mps", o.MPS, "Give shares CUDA MPS limits (memory and active threads in proportion to the share); needs exclusive-process compute mode and the MPS control daemon (docs/device-plugin.md).")
	fs.StringVar(&o.MPSPipeDir, "mps-pipe-dir", o.MPSPipeDir, "The MPS control daemon's pipe directory on the host, mounted into shared containers.")

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
	if o.DevicePlugin {
		errs = append(errs, o.validateDevicePlugin()...)
	}
	return errors.Join(errs...)
}

func (o *Options) validateDevicePlugin() []error {
	var errs []error
	if len(o.DevicePluginResources) == 0 {
		errs = append(errs, errors.New("--device-plugin-resources is empty: name gpufleet.io/gpu-milli, nvidia.com/gpu or both"))
	}
	for _, r := range o.DevicePluginResources {
		if r != deviceplugin.ResourceMilli && r != deviceplugin.ResourceWhole {
			errs = append(errs, fmt.Errorf("--device-plugin-resources: %q is not gpufleet.io/gpu-milli or nvidia.com/gpu", r))
		}
	}
	if o.PodResources == "" {
		errs = append(errs, errors.New("--device-plugin needs --pod-resources-socket: it finds the pod being admitted through it"))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("--device-plugin needs --node-name (or $NODE_NAME): it reads the annotations of its node's pods"))
	}
	if o.DevicePluginDir == "" {
		errs = append(errs, errors.New("--device-plugin-dir must not be empty"))
	}
	switch o.DevicePluginOnMismatch {
	case deviceplugin.OnMismatchRefuse, deviceplugin.OnMismatchWarn:
	default:
		errs = append(errs, fmt.Errorf("--device-plugin-on-mismatch=%q: want refuse or warn", o.DevicePluginOnMismatch))
	}
	if o.MPS && !filepath.IsAbs(o.MPSPipeDir) {
		errs = append(errs, fmt.Errorf("--mps-pipe-dir=%q: want an absolute path", o.MPSPipeDir))
	}
	return errs
}

// cdiKind resolves --cdi-kind.
func (o *Options) cdiKind() string {
	switch o.CDIKind {
	case CDIKindAuto:
		if o.NVML == NVMLMock {
			return deviceplugin.SimCDIKind
		}
		return "nvidia.com/gpu"
	case CDIKindNone:
		return ""
	}
	return o.CDIKind
}
