package promsource

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// Source computes the adapter's metrics with instant queries to a
// Prometheus server. It is safe for concurrent use.
type Source struct {
	cfg config
	// endpoint is the instant query API of the server.
	endpoint string
	// server is the server's URL without a password, for messages.
	server string
}

var _ source.Source = &Source{}

// New returns a Source that queries the Prometheus server at serverURL
// (http or https, optionally with a path prefix such as
// "http://monitoring/prometheus"). It returns every problem of the URL and
// the options together.
func New(serverURL string, opts ...Option) (*Source, error) {
	cfg, err := newConfig(opts)
	errs := []error{err}
	u, uerr := url.Parse(serverURL)
	switch {
	case uerr != nil:
		errs = append(errs, fmt.Errorf("server URL: %w", uerr))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("server URL %q must be http:// or https:// with a host", u.Redacted()))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("server URL %q must have no query or fragment", u.Redacted()))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the Prometheus source: %w", err)
	}
	return &Source{
		cfg:      cfg,
		endpoint: u.JoinPath("api", "v1", "query").String(),
		server:   u.Redacted(),
	}, nil
}

// objectKey identifies an object by the values of the labels a query groups
// by: (namespace, pod) or (node, "").
type objectKey [2]string

// PodValues implements source.Source with one query for all pods, e.g.
//
//	sum by (namespace, pod) (rate(inference_requests_total{namespace="ns",pod=~"a|b",model="m"}[1m]))
//
// The pods may span namespaces. ScopePodOnAgent series carry the namespace
// and pod labels of the workload pod, so they are queried the same way.
func (s *Source) PodValues(ctx context.Context, m source.Metric, pods []source.Pod, sel labels.Selector) ([]source.Sample, []bool, error) {
	if m.Scope != source.ScopePod && m.Scope != source.ScopePodOnAgent {
		return nil, nil, fmt.Errorf("metric %s (series %s) is not a pod metric", m.Name, m.Series)
	}
	keys := make([]objectKey, len(pods))
	var namespaces, names distinct
	for i, p := range pods {
		if p.Namespace == "" || p.Name == "" {
			return nil, nil, fmt.Errorf("metric %s: pod %d (%q/%q) needs a namespace and a name", m.Name, i, p.Namespace, p.Name)
		}
		keys[i] = objectKey{p.Namespace, p.Name}
		namespaces.add(p.Namespace)
		names.add(p.Name)
	}
	groupBy := []string{s.cfg.namespaceLabel, s.cfg.podLabel}
	return s.values(ctx, m, groupBy, [][]string{namespaces.list, names.list}, sel, keys)
}

// NodeValues implements source.Source with one query for all nodes, e.g.
//
//	avg by (node) (gpufleet_gpu_utilization_ratio{node=~"n1|n2"})
func (s *Source) NodeValues(ctx context.Context, m source.Metric, nodes []string, sel labels.Selector) ([]source.Sample, []bool, error) {
	if m.Scope != source.ScopeNode {
		return nil, nil, fmt.Errorf("metric %s (series %s) is not a node metric", m.Name, m.Series)
	}
	keys := make([]objectKey, len(nodes))
	var names distinct
	for i, n := range nodes {
		if n == "" {
			return nil, nil, fmt.Errorf("metric %s: node %d has no name", m.Name, i)
		}
		keys[i] = objectKey{n}
		names.add(n)
	}
	return s.values(ctx, m, []string{s.cfg.nodeLabel}, [][]string{names.list}, sel, keys)
}

// values queries m grouped by groupBy, over the series whose groupBy[i]
// label is one of identity[i] and that match sel, and returns the value of
// each of keys. It sends no query for no keys or a selector that selects
// nothing.
func (s *Source) values(ctx context.Context, m source.Metric, groupBy []string, identity [][]string, sel labels.Selector, keys []objectKey) ([]source.Sample, []bool, error) {
	selMatchers, selectable, err := selectorMatchers(sel, s.cfg.namespaceLabel, s.cfg.podLabel, s.cfg.nodeLabel)
	if err != nil {
		return nil, nil, fmt.Errorf("metric %s: %w", m.Name, err)
	}
	values := make([]source.Sample, len(keys))
	ok := make([]bool, len(keys))
	if len(keys) == 0 || !selectable {
		return values, ok, nil
	}
	matchers := make([]string, 0, len(groupBy)+len(selMatchers))
	for i, l := range groupBy {
		im, err := identityMatcher(l, identity[i])
		if err != nil {
			return nil, nil, fmt.Errorf("metric %s: %w", m.Name, err)
		}
		matchers = append(matchers, im)
	}
	q, err := buildQuery(m, groupBy, append(matchers, selMatchers...), s.cfg.window)
	if err != nil {
		return nil, nil, fmt.Errorf("metric %s: %w", m.Name, err)
	}
	vec, err := s.query(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("metric %s: %w", m.Name, err)
	}
	found := make(map[objectKey]sample, len(vec))
	for _, smp := range vec {
		var k objectKey
		for i, l := range groupBy {
			k[i] = smp.labels[l]
		}
		found[k] = smp
	}
	for i, k := range keys {
		if smp, hit := found[k]; hit {
			values[i], ok[i] = s.sample(m, smp)
		}
	}
	return values, ok, nil
}

// sample converts one result; NaN, infinities and native histograms are no
// value.
func (s *Source) sample(m source.Metric, smp sample) (source.Sample, bool) {
	v := smp.value
	if smp.histogram || math.IsNaN(v) || math.IsInf(v, 0) {
		return source.Sample{}, false
	}
	var window time.Duration
	if m.Kind == source.Rate {
		window = s.cfg.window
	}
	return source.Sample{Value: v, Timestamp: smp.time, Window: window}, true
}

// distinct collects strings once each, in order of first appearance.
type distinct struct {
	list []string
	seen map[string]struct{}
}

func (d *distinct) add(s string) {
	if _, dup := d.seen[s]; dup {
		return
	}
	if d.seen == nil {
		d.seen = map[string]struct{}{}
	}
	d.seen[s] = struct{}{}
	d.list = append(d.list, s)
}
