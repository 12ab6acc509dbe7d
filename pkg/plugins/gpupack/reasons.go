package gpupack

import (
	"fmt"
	"strings"

	fwk "k8s.io/kube-scheduler/framework"
)

// fitStatus says whether node n can take r, and if not, why, in words that
// read well after the scheduler's "N node(s)" count: nodes with the same
// problem share one reason string.
func fitStatus(n *Node, r Request) *fwk.Status {
	if len(n.Free) == 0 {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node(s) had no GPUs")
	}
	if !r.AllowsModel(n.Model, n.ModelKnown) {
		want := strings.Join(r.Models, "|")
		if !n.ModelKnown {
			return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had no GPU model label (pod requires %s)", want))
		}
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had GPU model %s (pod requires %s)", n.Model, want))
	}
	if r.Count() > len(n.Free) {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had only %s (pod requires %d)", plural(len(n.Free), "GPU"), r.Count()))
	}
	if n.FitsGPU(r) {
		return nil
	}
	if r.GPUs > 0 {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("node(s) had fewer than %d free GPU(s)", r.GPUs))
	}
	return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("node(s) had no single GPU with %d free milli-GPU", r.Milli))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
