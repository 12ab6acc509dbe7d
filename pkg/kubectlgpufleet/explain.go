package kubectlgpufleet

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// schedulerName is the profile gpufleet's manifests install.
const schedulerName = "gpufleet-scheduler"

func newExplainCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "explain POD",
		Short:   "Where a GPU pod runs and on which GPUs, or why it is pending and where it would fit",
		Example: `  kubectl gpufleet explain property-value-7d9f-abcde -n ml-production`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			pod, err := client.CoreV1().Pods(ns).Get(ctx, args[0], metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("pod %s/%s not found (another namespace? -n NAMESPACE)", ns, args[0])
			}
			if err != nil {
				return err
			}
			inv, err := inventory(ctx, cfg, nil)
			if err != nil {
				return err
			}
			events, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
				"involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.AsSelector().String()})
			if err != nil {
				return fmt.Errorf("reading the pod's events: %w", err)
			}
			return Explain(streams.Out, pod, inv, events.Items)
		},
	}
}

// Explain writes what gpufleet knows of pod: its GPUs when it runs, or why
// it is pending and where it would fit, from the inventory of GPU nodes and
// the pod's events.
func Explain(w io.Writer, pod *corev1.Pod, inv []Node, events []corev1.Event) error {
	p := &printer{w: w}
	req := RequestOf(pod)
	name := pod.Namespace + "/" + pod.Name
	p.f("Pod %s: %s, phase %s, scheduler %s.", name, req, pod.Status.Phase, pod.Spec.SchedulerName)
	if req.Count() == 0 {
		p.f("It requests no GPU (%s or %s): gpufleet places it like any other pod.", names.ResourceGPU, names.ResourceGPUMilli)
		return p.err
	}
	models := allowedModels(pod)
	if len(models) > 0 {
		p.f("It accepts GPU models %s (%s).", strings.Join(models, ", "), names.AnnotationGPUModel)
	}
	switch {
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		p.f("It has finished: it holds no GPU any more.")
	case pod.Spec.NodeName != "":
		explainBound(p, pod, req, inv)
	default:
		explainPending(p, pod, req, models, inv, events)
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func allowedModels(pod *corev1.Pod) []string {
	v := pod.Annotations[names.AnnotationGPUModel]
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var out []string
	for _, m := range strings.Split(v, "|") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

func explainBound(p *printer, pod *corev1.Pod, req Request, inv []Node) {
	p.f("It runs on node %s.", pod.Spec.NodeName)
	i := slices.IndexFunc(inv, func(n Node) bool { return n.Name == pod.Spec.NodeName })
	if i < 0 {
		p.f("Node %s has no GPUs gpufleet knows of (it is gone, or advertises neither %s nor %s).", pod.Spec.NodeName, names.ResourceGPU, names.ResourceGPUMilli)
		return
	}
	n := inv[i]
	for _, u := range n.Unplaced {
		if u.Namespace == pod.Namespace && u.Pod == pod.Name {
			p.f("Its GPUs are unknown: %s.", u.Problem)
			if pod.Spec.SchedulerName != schedulerName {
				p.f("It was placed by %s, not %s: only gpufleet's scheduler writes %s.", pod.Spec.SchedulerName, schedulerName, names.AnnotationGPUIndices)
			}
			return
		}
	}
	p.f("Its GPUs (%s=%s), on a %s node:", names.AnnotationGPUIndices, pod.Annotations[names.AnnotationGPUIndices], n.Model)
	for _, g := range n.GPUs {
		mine := slices.ContainsFunc(g.Pods, func(s Share) bool { return s.Namespace == pod.Namespace && s.Pod == pod.Name })
		if !mine {
			continue
		}
		var others []string
		for _, s := range g.Pods {
			if s.Namespace != pod.Namespace || s.Pod != pod.Name {
				others = append(others, fmt.Sprintf("%s/%s %dm", s.Namespace, s.Pod, s.Milli))
			}
		}
		shared := "not shared"
		if len(others) > 0 {
			shared = "shared with " + strings.Join(others, ", ")
		}
		p.f("  GPU %d: %dm of it, %dm free; %s.", g.Index, req.PerGPU(), g.Free, shared)
	}
	if pod.Status.Phase == corev1.PodPending {
		p.f("It is bound but not started yet: the kubelet on %s is pulling its image or starting it (kubectl describe pod says which).", pod.Spec.NodeName)
	}
}

func explainPending(p *printer, pod *corev1.Pod, req Request, models []string, inv []Node, events []corev1.Event) {
	p.f("It is pending: no node has been chosen.")
	if pod.Spec.SchedulerName != schedulerName && req.Milli > 0 {
		p.f("Its scheduler is %s: only %s places %s shares on particular GPUs. Set spec.schedulerName: %s.", pod.Spec.SchedulerName, schedulerName, names.ResourceGPUMilli, schedulerName)
	}
	reason := ""
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			reason = c.Message
		}
	}
	slices.SortFunc(events, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
	for _, e := range events {
		if e.Reason == "FailedScheduling" && e.Message != "" {
			reason = e.Message
		}
	}
	if reason != "" {
		p.f("The scheduler says: %s", reason)
	} else {
		p.f("The scheduler has not reported on it yet (no PodScheduled condition, no FailedScheduling event): is %s running?", pod.Spec.SchedulerName)
	}
	explainFit(p, req, models, inv)
}

// candidate is a node and how close it comes to holding a request.
type candidate struct {
	node string
	// have is what the node offers: free whole GPUs, or the largest free
	// share of one GPU; gpu is that GPU (shares).
	have int64
	gpu  int
}

// explainFit says where the request fits now, or what is missing.
func explainFit(p *printer, req Request, models []string, inv []Node) {
	var allowed []Node
	seen := map[string]bool{}
	for _, n := range inv {
		seen[n.Model] = true
		if len(models) == 0 || slices.Contains(models, n.Model) {
			allowed = append(allowed, n)
		}
	}
	if len(allowed) == 0 {
		have := slices.Sorted(func(yield func(string) bool) {
			for m := range seen {
				if !yield(m) {
					return
				}
			}
		})
		p.f("No GPU node has an accepted model: the cluster has %s. Add such nodes or widen %s.", orNone(have), names.AnnotationGPUModel)
		return
	}
	var cands []candidate
	for _, n := range allowed {
		c := candidate{node: n.Name, gpu: -1}
		for _, g := range n.GPUs {
			switch {
			case g.Unhealthy:
			case req.GPUs > 0 && g.Allocated == 0:
				c.have++
			case req.GPUs == 0 && g.Free > c.have:
				c.have, c.gpu = g.Free, g.Index
			}
		}
		cands = append(cands, c)
	}
	need := req.GPUs
	if need == 0 {
		need = req.Milli
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmp.Or(cmp.Compare(b.have, a.have), cmp.Compare(a.node, b.node)) })
	var fits []string
	for _, c := range cands {
		if c.have >= need {
			fits = append(fits, describe(c, req))
		}
	}
	if len(fits) > 0 {
		p.f("Its GPUs are free now on: %s. If it stays pending, something else blocks it there (CPU, memory, taints, affinity: the scheduler's message above), or the scheduler has not retried yet.", strings.Join(first(fits, 5), "; "))
		return
	}
	best := cands[0]
	if req.GPUs > 0 {
		p.f("No accepted node has %d whole GPUs free: the most is %s. Whole GPUs free up when GPU pods there end; shares block a whole GPU until their last pod leaves.", req.GPUs, describe(best, req))
	} else {
		p.f("No accepted GPU has %dm free: the most is %s. Ask for a smaller share, or free GPUs there.", req.Milli, describe(best, req))
	}
}

func describe(c candidate, req Request) string {
	if req.GPUs > 0 {
		return fmt.Sprintf("%s (%d whole GPUs free)", c.node, c.have)
	}
	if c.gpu < 0 {
		return fmt.Sprintf("%s (no GPU with room)", c.node)
	}
	return fmt.Sprintf("%s (GPU %d has %dm free)", c.node, c.gpu, c.have)
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("and %d more", len(xs)-n))
	}
	return xs
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "no GPU nodes"
	}
	return strings.Join(xs, ", ")
}
