package embedded

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// Source answers metric queries from a scrape store.
type Source struct {
	Store *scrape.Store
}

var _ source.Source = &Source{}

// PodValues implements source.Source.
func (s *Source) PodValues(_ context.Context, m source.Metric, pods []source.Pod, sel labels.Selector) ([]source.Sample, []bool, error) {
	if m.Scope == source.ScopeNode {
		return nil, nil, fmt.Errorf("metric %s describes nodes, not pods", m.Name)
	}
	values := make([]source.Sample, len(pods))
	ok := make([]bool, len(pods))
	for i, p := range pods {
		if m.Scope == source.ScopePodOnAgent {
			if p.Node != "" {
				values[i], ok[i] = s.query(NodeKey(p.Node), m, podSeries{p.Namespace, p.Name, selectorOrNil(sel)})
			}
			continue
		}
		values[i], ok[i] = s.query(PodKey(p.Namespace, p.Name), m, selectorOrNil(sel))
	}
	return values, ok, nil
}

// NodeValues implements source.Source.
func (s *Source) NodeValues(_ context.Context, m source.Metric, nodes []string, sel labels.Selector) ([]source.Sample, []bool, error) {
	if m.Scope != source.ScopeNode {
		return nil, nil, fmt.Errorf("metric %s describes pods, not nodes", m.Name)
	}
	values := make([]source.Sample, len(nodes))
	ok := make([]bool, len(nodes))
	for i, n := range nodes {
		values[i], ok[i] = s.query(NodeKey(n), m, selectorOrNil(sel))
	}
	return values, ok, nil
}

func (s *Source) query(key string, m source.Metric, ssel scrape.Selector) (source.Sample, bool) {
	var v scrape.Value
	var ok bool
	if m.Kind == source.Rate {
		v, ok = s.Store.Rate(key, m.Series, ssel, 0)
	} else {
		v, ok = s.Store.Gauge(key, m.Series, ssel)
	}
	if !ok {
		return source.Sample{}, false
	}
	if m.Kind == source.Mean {
		v.Value /= float64(v.Series)
	}
	return source.Sample{Value: v.Value, Timestamp: v.Timestamp, Window: v.Window}, true
}

// selectorOrNil drops an empty selector: the store then skips matching.
func selectorOrNil(sel labels.Selector) scrape.Selector {
	if sel == nil || sel.Empty() {
		return nil
	}
	return sel
}

// podSeries selects the agent series of one pod (labels namespace and pod)
// that sel, if any, also selects.
type podSeries struct {
	namespace, name string
	sel             scrape.Selector
}

func (p podSeries) Matches(l labels.Labels) bool {
	return l.Get("namespace") == p.namespace && l.Get("pod") == p.name && (p.sel == nil || p.sel.Matches(l))
}
