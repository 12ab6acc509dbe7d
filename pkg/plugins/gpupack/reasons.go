package gpupack

import (
	"fmt"
	"strings"
	"sync"

	fwk "k8s.io/kube-scheduler/framework"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// reasons formats the reasons a node rejects one request, each once per
// scheduling cycle: Filter runs on hundreds of nodes and most share a
// reason. Safe for concurrent use.
type reasons struct {
	r      Request
	noRoom string

	mu    sync.Mutex
	other map[string]string
}

func newReasons(r Request) *reasons {
	rs := &reasons{r: r, other: map[string]string{}}
	if r.GPUs > 0 {
		rs.noRoom = fmt.Sprintf("node(s) had fewer than %d free GPU(s)", r.GPUs)
	} else {
		rs.noRoom = fmt.Sprintf("node(s) had no single GPU with %d free milli-GPU", r.Milli)
	}
	return rs
}

func (rs *reasons) get(key string, format func() string) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s, ok := rs.other[key]
	if !ok {
		s = format()
		rs.other[key] = s
	}
	return s
}

// fitStatus says whether node n can take r, and if not, why, in words that
// read well after the scheduler's "N node(s)" count: nodes with the same
// problem share one reason string.
func fitStatus(n *Node, r Request) *fwk.Status { return newReasons(r).status(n) }

func (rs *reasons) status(n *Node) *fwk.Status {
	r := rs.r
	if len(n.Free) == 0 {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node(s) had no GPUs")
	}
	if !r.AllowsModel(n.Model, n.ModelKnown) {
		msg := rs.get("model/"+n.Model, func() string {
			want := strings.Join(r.Models, "|")
			if !n.ModelKnown {
				return fmt.Sprintf("node(s) had no GPU model label (pod requires %s)", want)
			}
			return fmt.Sprintf("node(s) had GPU model %s (pod requires %s)", n.Model, want)
		})
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, msg)
	}
	if r.Count() > len(n.Free) {
		msg := rs.get(fmt.Sprint("count/", len(n.Free)), func() string {
			return fmt.Sprintf("node(s) had only %s (pod requires %d)", plural(len(n.Free), "GPU"), r.Count())
		})
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, msg)
	}
	if n.FitsGPU(r) {
		return nil
	}
	if len(n.Unhealthy) > 0 {
		msg := rs.get(fmt.Sprint("unhealthy/", n.Unhealthy), func() string {
			return fmt.Sprintf("%s (unhealthy GPUs %s)", rs.noRoom, names.FormatGPUIndices(n.Unhealthy))
		})
		return fwk.NewStatus(fwk.Unschedulable, msg)
	}
	return fwk.NewStatus(fwk.Unschedulable, rs.noRoom)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
