package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/agent"
	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/deviceplugin"
	"github.com/gpufleet/gpufleet/pkg/nvml"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
)

// NewCommand returns the gpu-agent command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:          "gpu-agent",
		Short:        "Export GPU utilization, memory, power and health per GPU and per pod; label the node with its GPUs",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return Run(ctx, o)
		},
	}
	o.AddFlags(cmd.Flags())
	// klog's own flags (-v, ...). The agent avoids k8s.io/component-base's
	// logging setup: it links dozens of packages and costs resident memory.
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	cmd.Flags().AddGoFlagSet(logFlags)
	return cmd
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, o *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	logger := klog.FromContext(ctx)
	lib, simNode, err := openNVML(o)
	if err != nil {
		return err
	}
	defer func() { _ = lib.Shutdown() }()
	logger.Info("GPUs found", "count", len(lib.Devices()), "source", o.NVML)

	client, err := kubeClient(o.Kubeconfig)
	if err != nil {
		return err
	}
	if client != nil && o.LabelNode && o.NodeName == "" {
		return errors.New("--label-node needs --node-name (or $NODE_NAME); or run with --label-node=false")
	}
	var samplerOpts []agent.SamplerOption
	var owners agent.ChainOwners
	if simNode != nil {
		owners = append(owners, agent.SimOwners{Node: simNode})
	}
	if o.DevicePlugin && client == nil {
		return errors.New("--device-plugin needs the API server (--kubeconfig, or run in a pod): it reads the GPU annotations of its node's pods")
	}
	cgroups := agent.CgroupOwners{Proc: attribution.ProcResolver{Root: o.ProcRoot}}
	if client != nil && o.NodeName != "" {
		cgroups.Pods = attribution.NewPodIndex(client.Pods(), o.NodeName)
		go cgroups.Pods.Run(ctx)
		owners = append(owners, cgroups)
	}
	if len(owners) > 0 {
		samplerOpts = append(samplerOpts, agent.WithProcessOwners(owners))
	}
	var extra []agent.PodResourcesSource
	var pr *attribution.PodResourcesClient
	if o.PodResources != "" {
		// Never treat allocations as stale between two refreshes.
		pr = attribution.NewPodResourcesClient(o.PodResources, attribution.WithMaxStaleness(max(attribution.DefaultMaxStaleness, 3*o.PodRefresh)))
		defer func() { _ = pr.Close() }()
		go refreshPodResources(ctx, pr, o.PodRefresh)
		samplerOpts = append(samplerOpts, agent.WithDeviceOwners(pr))
		extra = append(extra, pr)
	}
	s := agent.NewSampler(lib, o.Interval, samplerOpts...)
	go s.Run(ctx)

	if client != nil && o.LabelNode {
		var infos []nvml.DeviceInfo
		for _, d := range lib.Devices() {
			infos = append(infos, d.Info())
		}
		system, err := lib.System()
		if err != nil {
			logger.Error(err, "Reading driver versions for node labels")
		}
		go agent.NewNodeLabeler(client, o.NodeName, agent.NodeInventory(system, infos)).Run(ctx, o.LabelPeriod)
		go agent.NewHealthAnnotator(client, o.NodeName, samplerHealth(s)).Run(ctx, o.Interval)
	}
	collectors := []prometheus.Collector{agent.NewPodResourcesCollector(extra...)}
	if o.DevicePlugin {
		plugin, cleanup, err := startDevicePlugin(ctx, o, lib, s, pr, cgroups.Pods, client)
		if err != nil {
			return err
		}
		defer cleanup()
		collectors = append(collectors, plugin.Collectors()...)
	}
	h, err := agent.Handler(s, collectors...)
	if err != nil {
		return err
	}
	return agent.Serve(ctx, o.Listen, h)
}

// startDevicePlugin runs the kubelet device plugin on the sampler's GPUs
// and health until ctx ends. cleanup removes the simulated GPUs' CDI spec.
func startDevicePlugin(ctx context.Context, o *Options, lib nvml.Library, s *agent.Sampler, pr *attribution.PodResourcesClient, pods *attribution.PodIndex, events *agent.KubeClient) (*deviceplugin.Plugin, func(), error) {
	logger := klog.FromContext(ctx)
	var infos []nvml.DeviceInfo
	for _, d := range lib.Devices() {
		infos = append(infos, d.Info())
	}
	gpus := deviceplugin.GPUsFromNVML(infos)
	cleanup := func() {}
	kind := o.cdiKind()
	if kind == deviceplugin.SimCDIKind {
		path, err := deviceplugin.WriteSimCDISpec(o.CDISpecDir, gpus)
		if err != nil {
			return nil, nil, fmt.Errorf("--cdi-kind=%s needs the simulated GPUs' CDI spec in --cdi-spec-dir: %w", kind, err)
		}
		logger.Info("Wrote the simulated GPUs' CDI spec", "path", path)
		cleanup = func() { _ = os.Remove(path) }
	}
	cfg := deviceplugin.Config{
		NodeName: o.NodeName, GPUs: gpus,
		Milli: slices.Contains(o.DevicePluginResources, deviceplugin.ResourceMilli),
		Whole: slices.Contains(o.DevicePluginResources, deviceplugin.ResourceWhole),
		Dir:   o.DevicePluginDir, PodResources: pr, Pods: pods, Events: events,
		Health:         samplerHealth(s),
		HealthInterval: o.Interval,
		OnMismatch:     o.DevicePluginOnMismatch,
		Allocation: deviceplugin.AllocationConfig{
			CDIKind: kind, VisibleDevicesEnv: o.VisibleDevicesEnv,
			MPS: deviceplugin.MPSConfig{Enabled: o.MPS, PipeDir: o.MPSPipeDir},
		},
	}
	plugin, err := deviceplugin.New(cfg)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	go func() {
		// Wait for the pod index: until it has listed the node's pods, the
		// plugin could not tell which pod the kubelet admits.
		if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
			return
		}
		if err := plugin.Run(ctx); err != nil {
			logger.Error(err, "Device plugin stopped")
		}
	}()
	return plugin, cleanup, nil
}

// samplerHealth reads each GPU's health from the sampler's latest snapshot.
func samplerHealth(s *agent.Sampler) func() map[int]bool {
	return func() map[int]bool {
		snap := s.Latest()
		if snap == nil {
			return nil
		}
		out := make(map[int]bool, len(snap.GPUs))
		for _, g := range snap.GPUs {
			out[g.Info.Index] = g.Healthy
		}
		return out
	}
}

// openNVML opens the real library or builds the simulated node. It never
// falls back from one to the other.
func openNVML(o *Options) (nvml.Library, *sim.Node, error) {
	if o.NVML == NVMLMock {
		if err := os.MkdirAll(o.SimDir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("creating --sim-dir: %w", err)
		}
		node, err := sim.New(sim.Options{NodeName: o.NodeName, Dir: o.SimDir, GPUs: o.SimGPUs, Model: o.SimModel})
		if err != nil {
			return nil, nil, err
		}
		lib, err := nvml.New(node.Interface())
		return lib, node, err
	}
	lib, err := nvml.New(gonvml.New())
	if errors.Is(err, nvml.ErrLibraryNotFound) {
		return nil, nil, fmt.Errorf("%w: is this a GPU node with the NVIDIA driver installed, and is the library visible in the container (NVIDIA container toolkit)? On a machine without GPUs, --nvml=mock runs a simulated node", err)
	}
	return lib, nil, err
}

// kubeClient returns a client from the kubeconfig, the in-cluster
// configuration, or nil outside a cluster without a kubeconfig.
func kubeClient(kubeconfig string) (*agent.KubeClient, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	return agent.NewKubeClient(cfg)
}

// refreshPodResources re-reads GPU allocations from the kubelet. A missing
// socket is logged when it starts and stops failing, not every time.
func refreshPodResources(ctx context.Context, pr *attribution.PodResourcesClient, every time.Duration) {
	logger := klog.FromContext(ctx)
	failing := false
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		err := pr.Refresh(ctx)
		switch {
		case err != nil && !failing:
			logger.Error(err, "Reading GPU allocations from the kubelet; whole-GPU pod attribution is off until it works")
		case err == nil && failing:
			logger.Info("Reading GPU allocations from the kubelet works again")
		}
		failing = err != nil
	}, every)
}
