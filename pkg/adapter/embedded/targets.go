// Package embedded is the metrics adapter's default source: it finds the
// pods to scrape in the cluster cache, hands them to a scrape.Scraper, and
// answers source.Source queries from the scraper's store.
package embedded

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// Default ports when a pod has no gpufleet.io/metrics-port annotation.
const (
	DefaultPodPort   = 8000 // inference-server
	DefaultAgentPort = 9400 // gpu-agent
)

// PodKey and NodeKey are the scrape target keys of a pod and of a node's
// gpu-agent.
func PodKey(namespace, name string) string { return "pod/" + namespace + "/" + name }

// NodeKey is the scrape target key of the gpu-agent on node.
func NodeKey(node string) string { return "node/" + node }

// Discovery keeps a Scraper's targets equal to the scrapable pods in the
// cache: running pods annotated gpufleet.io/scrape=true, and the gpu-agent
// pods (matched by AgentSelector), one per node.
type Discovery struct {
	Cache         *cluster.Cache
	Scraper       *scrape.Scraper
	AgentSelector labels.Selector
	// MinResync is the shortest time between two recomputations of the
	// target set (pod events in between are batched). Default 100ms.
	MinResync time.Duration

	mu       sync.Mutex
	warned   map[string]string // pod key -> last annotation error logged
	dirty    chan struct{}
	lastSize int
}

// Run watches pod events and updates the targets until ctx ends.
func (d *Discovery) Run(ctx context.Context) error {
	d.dirty = make(chan struct{}, 1)
	d.warned = map[string]string{}
	if err := d.Cache.OnPodChange(func() {
		select {
		case d.dirty <- struct{}{}:
		default:
		}
	}); err != nil {
		return fmt.Errorf("watching pods for scrape targets: %w", err)
	}
	minResync := d.MinResync
	if minResync <= 0 {
		minResync = 100 * time.Millisecond
	}
	d.Sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.dirty:
		}
		d.Sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(minResync):
		}
	}
}

// Sync recomputes the target set now.
func (d *Discovery) Sync(ctx context.Context) {
	logger := klog.FromContext(ctx)
	targets, errs := Targets(d.Cache.Pods("", nil), d.AgentSelector)
	d.mu.Lock()
	if d.warned == nil {
		d.warned = map[string]string{}
	}
	seen := map[string]bool{}
	for key, err := range errs {
		seen[key] = true
		if d.warned[key] != err.Error() { // once per distinct error
			d.warned[key] = err.Error()
			logger.Info("Not scraping pod: bad scrape annotations", "pod", key, "err", err)
		}
	}
	for key := range d.warned {
		if !seen[key] {
			delete(d.warned, key)
		}
	}
	if len(targets) != d.lastSize {
		logger.V(2).Info("Scrape targets changed", "count", len(targets))
		d.lastSize = len(targets)
	}
	d.mu.Unlock()
	d.Scraper.SetTargets(targets)
}

// Targets computes the scrape targets of pods. Pods with bad annotations
// are left out and reported in errs by namespace/name.
func Targets(pods []*corev1.Pod, agentSelector labels.Selector) (targets []scrape.Target, errs map[string]error) {
	agents := map[string]*corev1.Pod{} // node -> its running agent pod (the last by name, when several)
	for _, p := range pods {
		if !cluster.Running(p) || p.Status.PodIP == "" {
			continue
		}
		if agentSelector != nil && !agentSelector.Empty() && agentSelector.Matches(labels.Set(p.Labels)) {
			if cur, ok := agents[p.Spec.NodeName]; !ok || cur.Name < p.Name {
				agents[p.Spec.NodeName] = p
			}
			continue
		}
		if p.Annotations[names.AnnotationScrape] != "true" {
			continue
		}
		url, err := scrapeURL(p, DefaultPodPort)
		if err != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[p.Namespace+"/"+p.Name] = err
			continue
		}
		targets = append(targets, scrape.Target{
			Key:    PodKey(p.Namespace, p.Name),
			URL:    url,
			Labels: map[string]string{"namespace": p.Namespace, "pod": p.Name, "node": p.Spec.NodeName},
		})
	}
	for node, p := range agents {
		url, err := scrapeURL(p, DefaultAgentPort)
		if err != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[p.Namespace+"/"+p.Name] = err
			continue
		}
		targets = append(targets, scrape.Target{Key: NodeKey(node), URL: url, Labels: map[string]string{"node": node}})
	}
	return targets, errs
}

// scrapeURL builds http://IP:port/path from the pod's annotations.
func scrapeURL(p *corev1.Pod, defPort int) (string, error) {
	port := defPort
	if s, ok := p.Annotations[names.AnnotationScrapePort]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("annotation %s=%q: want a port number 1..65535", names.AnnotationScrapePort, s)
		}
		port = n
	}
	path := "/metrics"
	if s, ok := p.Annotations[names.AnnotationScrapePath]; ok {
		if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t\r\n#") {
			return "", fmt.Errorf("annotation %s=%q: want an absolute URL path such as /metrics", names.AnnotationScrapePath, s)
		}
		path = s
	}
	if net.ParseIP(p.Status.PodIP) == nil {
		return "", fmt.Errorf("pod IP %q is not an IP address", p.Status.PodIP)
	}
	u := "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)) + path
	// The scraper's requests parse the URL: reject here what they would
	// (bad escapes, control characters in the path) so it is reported.
	if _, err := url.Parse(u); err != nil {
		return "", fmt.Errorf("annotation %s=%q: want an absolute URL path such as /metrics: %w", names.AnnotationScrapePath, path, err)
	}
	return u, nil
}
