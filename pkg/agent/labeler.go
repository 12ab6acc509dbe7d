package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/nvml"
)

// Inventory is what the agent writes on its Node: GPU labels and the NVLink
// topology annotation.
type Inventory struct {
	Labels      map[string]string
	Annotations map[string]string
}

// NodeInventory describes a node's GPUs as labels. Product, memory and
// architecture are those of GPU 0 (nodes hold one model).
func NodeInventory(system nvml.SystemInfo, devices []nvml.DeviceInfo) Inventory {
	inv := Inventory{Labels: map[string]string{names.LabelGPUCount: strconv.Itoa(len(devices))}, Annotations: map[string]string{}}
	if len(devices) == 0 {
		return inv
	}
	d := devices[0]
	inv.Labels[names.LabelGPUProduct] = labelValue(d.Name)
	inv.Labels[names.LabelGPUMemoryMiB] = strconv.FormatUint(d.MemoryTotalBytes>>20, 10)
	inv.Labels[names.LabelGPUArch] = labelValue(d.Architecture)
	inv.Labels[names.LabelGPUDriverVersion] = labelValue(system.DriverVersion)
	inv.Labels[names.LabelGPUCUDAVersion] = labelValue(system.CUDAVersion)
	for k, v := range inv.Labels {
		if v == "" {
			delete(inv.Labels, k)
		}
	}
	if topo := Topology(devices); topo != "" {
		inv.Annotations[names.AnnotationGPUTopology] = topo
	}
	return inv
}

// Topology writes the NVLink links between GPUs as "i-j:n,..." (i < j).
func Topology(devices []nvml.DeviceInfo) string {
	type pair struct{ a, b int }
	links := map[pair]int{}
	for _, d := range devices {
		for _, l := range d.NVLinks {
			if l.PeerIndex > d.Index { // each link is seen from both ends
				links[pair{d.Index, l.PeerIndex}]++
			}
		}
	}
	pairs := make([]pair, 0, len(links))
	for p := range links {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].a != pairs[j].a {
			return pairs[i].a < pairs[j].a
		}
		return pairs[i].b < pairs[j].b
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = fmt.Sprintf("%d-%d:%d", p.a, p.b, links[p])
	}
	return strings.Join(parts, ",")
}

// labelValue makes s a valid label value: spaces and other characters
// labels forbid become '-', at most 63 characters, alphanumeric at both ends.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	out := strings.Trim(string(b), "-_.")
	if len(out) > validation.LabelValueMaxLength {
		out = strings.Trim(out[:validation.LabelValueMaxLength], "-_.")
	}
	return out
}

// NodeLabeler keeps the agent's Node labelled with its inventory. It needs
// only get and patch on nodes, and patches only when something differs.
type NodeLabeler struct {
	client   NodeClient
	nodeName string
	want     Inventory
}

// NewNodeLabeler labels nodeName with inv.
func NewNodeLabeler(client NodeClient, nodeName string, inv Inventory) *NodeLabeler {
	return &NodeLabeler{client: client, nodeName: nodeName, want: inv}
}

// Sync patches the node if a label or annotation differs, and says whether
// it did.
func (l *NodeLabeler) Sync(ctx context.Context) (bool, error) {
	node, err := l.client.GetNode(ctx, l.nodeName)
	if err != nil {
		return false, fmt.Errorf("reading node %s (does the agent's ServiceAccount have get on nodes?): %w", l.nodeName, err)
	}
	labels, annotations := diff(node.Labels, l.want.Labels), diff(node.Annotations, l.want.Annotations)
	if len(labels) == 0 && len(annotations) == 0 {
		return false, nil
	}
	meta := map[string]any{}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	if len(annotations) > 0 {
		meta["annotations"] = annotations
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return false, err
	}
	if err := l.client.PatchNode(ctx, l.nodeName, types.MergePatchType, patch); err != nil {
		return false, fmt.Errorf("labelling node %s (does the agent's ServiceAccount have patch on nodes?): %w", l.nodeName, err)
	}
	klog.FromContext(ctx).Info("Labelled node with its GPU inventory", "node", l.nodeName, "labels", labels, "annotations", annotations)
	return true, nil
}

// Run syncs now, retrying with backoff until it succeeds, then again every
// period (someone may edit the labels), until ctx ends.
func (l *NodeLabeler) Run(ctx context.Context, period time.Duration) {
	logger := klog.FromContext(ctx)
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		backoff := wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 8, Cap: 2 * time.Minute}
		_ = wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
			if _, err := l.Sync(ctx); err != nil {
				logger.Error(err, "Labelling node; will retry")
				return false, nil
			}
			return true, nil
		})
	}, period)
}

// diff returns the entries of want that are missing from have or differ.
func diff(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out[k] = v
		}
	}
	return out
}
