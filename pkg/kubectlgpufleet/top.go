package kubectlgpufleet

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	cmapi "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"
)

// TopRow is one object's live figures from the custom metrics API; a nil
// figure is one the API has no current value for.
type TopRow struct {
	Namespace, Name string
	Values          map[string]*float64
}

// topColumns are the metrics top shows, per kind, with their headers.
var topColumns = map[string][][2]string{
	"pods":  {{"gpu_utilization", "GPU UTIL"}, {"gpu_memory_used_bytes", "GPU MEMORY"}, {"requests_per_second", "REQ/S"}, {"inference_queue_depth", "QUEUE"}},
	"nodes": {{"gpu_utilization", "GPU UTIL"}, {"gpu_memory_used_bytes", "GPU MEMORY"}},
}

func newTopCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "top pods|nodes",
		Short: "GPU utilization, GPU memory, requests/s and queue depth from the custom metrics API",
		Example: `  kubectl gpufleet top nodes
  kubectl gpufleet top pods -n ml-production
  kubectl gpufleet top pods -A`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"pods", "nodes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			ns := ""
			if args[0] == "pods" && !all {
				if ns, _, err = flags.ToRawKubeConfigLoader().Namespace(); err != nil {
					return err
				}
			}
			rows, err := topRows(cfg, args[0], ns)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintf(streams.ErrOut, "no %s with GPU or serving metrics\n", args[0])
				return nil
			}
			return PrintTop(streams.Out, args[0], rows, args[0] == "pods" && all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Pods of every namespace.")
	return cmd
}

// topRows asks the custom metrics API for every column of kind.
func topRows(cfg *rest.Config, kind, namespace string) ([]TopRow, error) {
	mc, err := customMetrics(cfg)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*TopRow{}
	for _, col := range topColumns[kind] {
		var list *cmapi.MetricValueList
		if kind == "nodes" {
			l, err := mc.RootScopedMetrics().GetForObjects(schema.GroupKind{Kind: "Node"}, labels.Everything(), col[0], labels.Everything())
			if err != nil {
				return nil, fmt.Errorf("%s of nodes: %w (gpufleet's metrics adapter serves custom.metrics.k8s.io)", col[0], err)
			}
			list = l
		} else {
			var err error
			list, err = podMetrics(cfg, mc, namespace, col[0])
			if err != nil {
				return nil, fmt.Errorf("%s of pods: %w (gpufleet's metrics adapter serves custom.metrics.k8s.io)", col[0], err)
			}
		}
		for _, v := range list.Items {
			key := v.DescribedObject.Namespace + "/" + v.DescribedObject.Name
			r := byKey[key]
			if r == nil {
				r = &TopRow{Namespace: v.DescribedObject.Namespace, Name: v.DescribedObject.Name, Values: map[string]*float64{}}
				byKey[key] = r
			}
			f := v.Value.AsApproximateFloat64()
			r.Values[col[0]] = &f
		}
	}
	out := make([]TopRow, 0, len(byKey))
	for _, r := range byKey {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b TopRow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// PrintTop writes the rows of kind as a table; "-" where the API had no
// current value.
func PrintTop(w io.Writer, kind string, rows []TopRow, withNamespace bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "NODE"
	if kind == "pods" {
		head = "POD"
		if withNamespace {
			head = "NAMESPACE\tPOD"
		}
	}
	for _, c := range topColumns[kind] {
		head += "\t" + c[1]
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		line := r.Name
		if withNamespace {
			line = r.Namespace + "\t" + r.Name
		}
		for _, c := range topColumns[kind] {
			line += "\t" + formatValue(c[0], r.Values[c[0]])
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func formatValue(metric string, v *float64) string {
	if v == nil {
		return "-"
	}
	switch metric {
	case "gpu_utilization":
		return fmt.Sprintf("%.0f%%", 100**v)
	case "gpu_memory_used_bytes":
		return fmt.Sprintf("%.0fMi", *v/(1<<20))
	case "requests_per_second":
		return fmt.Sprintf("%.1f", *v)
	}
	return fmt.Sprintf("%.0f", *v)
}

// customMetrics is a client of the custom metrics API, the HPA's own.
func customMetrics(cfg *rest.Config) (cmclient.CustomMetricsClient, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(dc))
	return cmclient.NewForConfig(cfg, mapper, cmclient.NewAvailableAPIsGetter(dc)), nil
}

// podMetrics is metric for the pods of namespace, or of every namespace
// ("": the API answers one namespace at a time).
func podMetrics(cfg *rest.Config, mc cmclient.CustomMetricsClient, namespace, metric string) (*cmapi.MetricValueList, error) {
	namespaces := []string{namespace}
	if namespace == "" {
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing namespaces: %w", err)
		}
		namespaces = namespaces[:0]
		for _, n := range list.Items {
			namespaces = append(namespaces, n.Name)
		}
	}
	out := &cmapi.MetricValueList{}
	for _, ns := range namespaces {
		l, err := mc.NamespacedMetrics(ns).GetForObjects(schema.GroupKind{Kind: "Pod"}, labels.Everything(), metric, labels.Everything())
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, l.Items...)
	}
	return out, nil
}
