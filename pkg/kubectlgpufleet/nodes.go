package kubectlgpufleet

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func newNodesCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	var noMetrics bool
	cmd := &cobra.Command{
		Use:   "nodes [NODE...]",
		Short: "Per node and per GPU: model, allocated and free milli-GPU, the pods on each GPU, utilization",
		Example: `  kubectl gpufleet nodes
  kubectl gpufleet nodes -o wide          # a line per GPU with its pods
  kubectl gpufleet nodes gpu-node-3 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case OutputTable, OutputWide, OutputJSON, OutputYAML:
			default:
				return fmt.Errorf("--output=%q: use wide, json or yaml (or nothing for the table)", output)
			}
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			inv, err := inventory(ctx, cfg, args)
			if err != nil {
				return err
			}
			if !noMetrics {
				if err := addUtilization(cfg, inv); err != nil {
					fmt.Fprintf(streams.ErrOut, "note: no GPU utilization: %v\n", err)
				}
			}
			return PrintNodes(streams.Out, inv, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: wide, json or yaml.")
	cmd.Flags().BoolVar(&noMetrics, "no-metrics", false, "Do not ask the custom metrics API for GPU utilization.")
	return cmd
}

// inventory lists the GPU nodes (all, or the named ones) and their pods.
func inventory(ctx context.Context, cfg *rest.Config, only []string) ([]Node, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName!="})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	inv := BuildInventory(nodes.Items, pods.Items)
	if len(only) == 0 {
		return inv, nil
	}
	var out []Node
	for _, name := range only {
		found := false
		for _, n := range inv {
			if n.Name == name {
				out, found = append(out, n), true
			}
		}
		if !found {
			if _, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
				return nil, fmt.Errorf("node %q: %w", name, err)
			}
			return nil, fmt.Errorf("node %q has no GPUs (no nvidia.com/gpu or gpufleet.io/gpu-milli allocatable, no gpufleet.io/gpu.count label)", name)
		}
	}
	return out, nil
}

// addUtilization fills each node's GPU utilization from the custom metrics
// API (nodes/gpu_utilization), as the metrics adapter serves it.
func addUtilization(cfg *rest.Config, inv []Node) error {
	if len(inv) == 0 {
		return nil
	}
	mc, err := customMetrics(cfg)
	if err != nil {
		return err
	}
	vals, err := mc.RootScopedMetrics().GetForObjects(schema.GroupKind{Kind: "Node"}, labels.Everything(), "gpu_utilization", labels.Everything())
	if err != nil {
		return fmt.Errorf("%w (gpufleet's metrics adapter serves custom.metrics.k8s.io; --no-metrics skips asking)", err)
	}
	byName := map[string]float64{}
	for _, v := range vals.Items {
		byName[v.DescribedObject.Name] = v.Value.AsApproximateFloat64()
	}
	for i := range inv {
		if u, ok := byName[inv[i].Name]; ok {
			inv[i].Utilization = &u
		}
	}
	return nil
}
