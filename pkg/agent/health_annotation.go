package agent

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// HealthAnnotator keeps the node's gpufleet.io/gpu.unhealthy annotation
// equal to the GPUs the sampler finds unhealthy, so that the scheduler
// places nothing new on them (the kubelet only drops them from the node's
// allocatable count, which does not say which GPUs they are).
type HealthAnnotator struct {
	client NodeClient
	node   string
	health func() map[int]bool
	// written is the value last written; nil before the first write.
	written *string
}

// NewHealthAnnotator returns an annotator of node from health (GPU index
// to healthy; nil or missing: healthy).
func NewHealthAnnotator(client NodeClient, node string, health func() map[int]bool) *HealthAnnotator {
	return &HealthAnnotator{client: client, node: node, health: health}
}

// Run checks every interval until ctx ends, and writes on every change
// (also the first check: a previous agent may have left the annotation).
func (h *HealthAnnotator) Run(ctx context.Context, every time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := h.Sync(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Writing the node's unhealthy GPUs", "node", h.node)
		}
	}, every)
}

// Sync writes the annotation if the unhealthy GPUs changed since the last
// write.
func (h *HealthAnnotator) Sync(ctx context.Context) error {
	value := unhealthyValue(h.health())
	if h.written != nil && *h.written == value {
		return nil
	}
	var v any = value
	if value == "" {
		v = nil // merge patch: remove
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{names.AnnotationGPUUnhealthy: v}}})
	if err != nil {
		return err
	}
	if err := h.client.PatchNode(ctx, h.node, types.MergePatchType, patch); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Unhealthy GPUs annotated on the node", "node", h.node, "gpus", value)
	h.written = &value
	return nil
}

func unhealthyValue(health map[int]bool) string {
	var bad []int
	for _, i := range slices.Sorted(maps.Keys(health)) {
		if !health[i] {
			bad = append(bad, i)
		}
	}
	return names.FormatGPUIndices(bad)
}
