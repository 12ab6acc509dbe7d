package manifests_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// knownMetrics are the series gpufleet exports (DESIGN.md's metric names, a
// contract): the gpu-agent's (pkg/agent), the metrics adapter's
// (pkg/adapter/scrape), the inference server's (pkg/inference/server) and
// the model router's (pkg/inference/router).
// Histograms are listed by their base name.
var knownMetrics = []string{
	"gpufleet_gpu_info",
	"gpufleet_gpu_utilization_ratio",
	"gpufleet_gpu_memory_used_bytes",
	"gpufleet_gpu_memory_total_bytes",
	"gpufleet_gpu_power_watts",
	"gpufleet_gpu_temperature_celsius",
	"gpufleet_gpu_sm_clock_hertz",
	"gpufleet_gpu_healthy",
	"gpufleet_gpu_sample_errors_total",
	"gpufleet_gpu_xid_errors_total",
	"gpufleet_gpu_unattributed_processes",
	"gpufleet_pod_gpu_utilization_ratio",
	"gpufleet_pod_gpu_memory_used_bytes",
	"gpufleet_agent_samplings_total",
	"gpufleet_agent_sampling_duration_seconds",
	"gpufleet_agent_last_sampling_timestamp_seconds",
	"gpufleet_agent_pod_resources_refreshes_total",
	"gpufleet_agent_pod_resources_failures_total",
	"gpufleet_agent_pod_resources_last_success_timestamp_seconds",
	"gpufleet_adapter_scrapes_total",
	"gpufleet_adapter_scrape_duration_seconds",
	"gpufleet_adapter_targets",
	"gpufleet_adapter_series",
	"gpufleet_adapter_series_dropped_total",
	"inference_requests_total",
	"inference_request_duration_seconds",
	"inference_batch_size",
	"inference_queue_depth",
	"inference_input_drift",
	"inference_output_drift",
	"inference_drift_window_rows",
	"inference_prediction",
	"gpufleet_router_requests_total",
	"gpufleet_router_request_duration_seconds",
	"gpufleet_router_retries_total",
	"gpufleet_router_backend_requests_total",
	"gpufleet_router_upstream_errors_total",
	"gpufleet_router_rate_limited_total",
	"gpufleet_router_backend_endpoints",
	"gpufleet_router_route_weight_percent",
	"gpufleet_router_rules_reloads_total",
}

var (
	metricName = regexp.MustCompile(`\b(?:gpufleet|inference)_[a-z0-9_]+\b`)
	upJob      = regexp.MustCompile(`\bup\{job="([^"]+)"\}`)
)

// scrapeJobs returns the job names the ServiceMonitors and PodMonitors give
// their targets: the value of their jobLabel on what they select (which
// they select by that label).
func scrapeJobs(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range objs {
		if u.GetKind() != "ServiceMonitor" && u.GetKind() != "PodMonitor" {
			continue
		}
		label, _, _ := unstructured.NestedString(u.Object, "spec", "jobLabel")
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		if v := sel[label]; label != "" && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// query is one PromQL expression the manifests ship, and where.
type query struct {
	where, expr string
}

// queries returns the PromQL of the PrometheusRules, the Grafana dashboards
// and the Argo Rollouts AnalysisTemplates.
func queries(t *testing.T, objs []*unstructured.Unstructured) []query {
	t.Helper()
	var out []query
	for _, u := range objs {
		switch u.GetKind() {
		case "PrometheusRule":
			groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
			for _, g := range groups {
				rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
				for _, r := range rules {
					r := r.(map[string]any)
					out = append(out, query{fmt.Sprintf("%s alert %v", short(u), r["alert"]), fmt.Sprint(r["expr"])})
				}
			}
		case "AnalysisTemplate":
			metrics, _, _ := unstructured.NestedSlice(u.Object, "spec", "metrics")
			for _, m := range metrics {
				q, ok, _ := unstructured.NestedString(m.(map[string]any), "provider", "prometheus", "query")
				if ok {
					out = append(out, query{fmt.Sprintf("%s metric %v", short(u), m.(map[string]any)["name"]), q})
				}
			}
		case "ConfigMap":
			if u.GetLabels()["grafana_dashboard"] != "1" {
				continue
			}
			data, _, _ := unstructured.NestedStringMap(u.Object, "data")
			if len(data) == 0 {
				t.Errorf("%s: no dashboard", short(u))
			}
			for file, text := range data {
				var d dashboard
				if err := json.Unmarshal([]byte(text), &d); err != nil {
					t.Errorf("%s %s: not JSON: %v", short(u), file, err)
					continue
				}
				if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
					t.Errorf("%s %s: want a uid, a title and panels", short(u), file)
				}
				for _, p := range d.allPanels() {
					if p.Type != "row" && len(p.Targets) == 0 {
						t.Errorf("%s %s: panel %q has no query", short(u), file, p.Title)
					}
					for _, tg := range p.Targets {
						out = append(out, query{fmt.Sprintf("%s panel %q", short(u), p.Title), tg.Expr})
					}
				}
			}
		}
	}
	return out
}

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// TestQueriesUseRealMetrics checks every alert, dashboard and analysis
// query names gpufleet metrics that exist, and, where promtool is installed
// (make deps installs Prometheus), that each one parses as PromQL.
func TestQueriesUseRealMetrics(t *testing.T) {
	e := newEnv(t)
	var qs []query
	var jobs []string
	seen := map[string]bool{}
	for _, b := range build(t, e) {
		jobs = append(jobs, scrapeJobs(b.objs)...)
		for _, q := range queries(t, b.objs) {
			if !seen[q.where] {
				seen[q.where] = true
				qs = append(qs, q)
			}
		}
	}
	kinds := map[string]int{}
	for _, q := range qs {
		kinds[strings.Fields(q.where)[0]]++
		ups := upJob.FindAllStringSubmatch(q.expr, -1)
		for _, m := range ups {
			if !slices.Contains(jobs, m[1]) {
				t.Errorf("%s: job %q is none of the monitors' jobs %v", q.where, m[1], jobs)
			}
		}
		if len(ups) == 0 && len(metricName.FindAllString(q.expr, -1)) == 0 {
			t.Errorf("%s: %q uses no gpufleet metric", q.where, q.expr)
		}
		for _, name := range metricName.FindAllString(q.expr, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(knownMetrics, b) {
					base = b
				}
			}
			if !slices.Contains(knownMetrics, base) {
				t.Errorf("%s: unknown metric %s", q.where, name)
			}
		}
	}
	for _, kind := range []string{"PrometheusRule", "ConfigMap", "AnalysisTemplate"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s query found: %v", kind, kinds)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deps installs it): PromQL syntax not checked")
	}
	// Every query as a recording rule, template variables replaced.
	vars := strings.NewReplacer("$__rate_interval", "1m", "$node", ".*", "$namespace", ".*",
		"{{args.namespace}}", "ml-production", "{{args.pod-template-hash}}", "abc123")
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for i, q := range qs {
		rules = append(rules, rule{Record: fmt.Sprintf("gpufleet_test:query_%d", i), Expr: vars.Replace(q.expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "manifests", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s\nrules:\n%s", err, out, data)
	}
}

// TestAlertRules checks the PrometheusRule with promtool as Prometheus
// would load it (alert names, label and annotation templates, durations).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deps installs it)")
	}
	e := newEnv(t)
	b := buildOne(t, build(t, e), "overlays/all")
	n := 0
	for _, u := range b.objs {
		if u.GetKind() != "PrometheusRule" {
			continue
		}
		n++
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		data, err := yaml.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), u.GetName()+".yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules %s: %v\n%s", short(u), err, out)
		}
	}
	if n == 0 {
		t.Error("overlays/all has no PrometheusRule")
	}
}
