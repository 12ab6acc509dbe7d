package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gpufleet/gpufleet/internal/binaries"
)

// CanaryPercent is the share of property-value's requests the router
// sends to its version 2, the canary; version 1 gets the rest.
const CanaryPercent = 10

// RouterRules are the model router's rules for the model's pods: found by
// their label (their loopback addresses cannot be in EndpointSlices), each
// of models routed by name, property-value split between version 1 and
// the version 2 canary.
func RouterRules(models []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- name: %[1]s
  pods: {namespace: %[2]s, selector: {app: %[1]s}, port: %[3]d}
routes:
`, AppName, Namespace, ServerPort)
	for _, m := range models {
		if m == ModelName {
			fmt.Fprintf(&b, `- name: %[1]s
  match: {model: %[1]s}
  backends:
  - {backend: %[2]s, weight: %[3]d, version: "1"}
  - {backend: %[2]s, weight: %[4]d, version: "2"}
`, m, AppName, 100-CanaryPercent, CanaryPercent)
			continue
		}
		fmt.Fprintf(&b, "- name: %[1]s\n  match: {model: %[1]s}\n  backends: [{backend: %[2]s}]\n", m, AppName)
	}
	return b.String()
}

// startRouter runs bin/model-router in front of the model's pods, routing
// models, and returns its base URL once it reaches a model pod.
func (s *Stack) startRouter(ctx context.Context, models []string) (string, error) {
	rules := filepath.Join(s.dir, "router-rules.yaml")
	if err := os.WriteFile(rules, []byte(RouterRules(models)), 0o644); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	p, err := s.startChild(binaries.ModelRouter, []string{
		"--rules=" + rules, "--kubeconfig=" + s.Cluster.KubeconfigPath, "--namespace=" + Namespace,
		"--listen=127.0.0.1:" + strconv.Itoa(port), "--shutdown-delay=0", "--rules-reload-interval=0",
	})
	if err != nil {
		return "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	// Ready once the router lists pods and one of them answers through it.
	if err := p.WaitHTTPOK(ctx, client, base+"/v2/models/"+models[0]+"/ready", 60*time.Second); err != nil {
		return "", fmt.Errorf("model-router not routing to a model pod at %s: %w\n%s", base, err, p.LogTail(40))
	}
	s.mu.Lock()
	s.routerURL = base
	s.mu.Unlock()
	return base, nil
}

// RouterURL is the model router's base URL, "" before NewLoad starts it.
func (s *Stack) RouterURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routerURL
}

// RouterSplit reads from the router's metrics how many inference requests
// its property-value route sent to each version.
func (s *Stack) RouterSplit(ctx context.Context) (map[string]float64, error) {
	base := s.RouterURL()
	if base == "" {
		return nil, fmt.Errorf("no model router: NewLoad starts it")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("model router metrics: %w", err)
	}
	out := map[string]float64{}
	for _, m := range fams["gpufleet_router_backend_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == ModelName {
			out[labels["version"]] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}
