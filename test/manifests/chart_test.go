package manifests_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gpufleet/gpufleet/apis/config/validation"
	"github.com/gpufleet/gpufleet/pkg/cost"
)

// TestChartLint is `helm lint --strict` on the chart, with the defaults and
// with each render's values: no warning, no error.
func TestChartLint(t *testing.T) {
	e := newEnv(t)
	for _, r := range chartRenders {
		linter := lint.RunAll(chartDir(e), values(t, r.vals), r.ns, lint.WithKubeVersion(chartKubeVersion))
		for _, m := range linter.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("%s: helm lint --strict: %s", r.name, m)
			}
		}
	}
}

// TestChartMatchesKustomize: the chart's default render is the kustomize
// base object by object, and its options are the kustomize components,
// but for the labels and annotations Helm adds and the scheduler
// ConfigMap's name (comparable lists them).
func TestChartMatchesKustomize(t *testing.T) {
	e := newEnv(t)
	builds := build(t, e)
	c := loadChart(t, e)
	localValues, err := os.ReadFile(filepath.Join(chartDir(e), "ci", "local-node-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kustomize, vals string }{
		{"base", ""},
		{"overlays/all", "monitoring: {enabled: true}\nnetworkPolicies: {enabled: true}\n"},
		{"base+components/monitoring", "monitoring: {enabled: true}\n"},
		{"base+components/network-policies", "networkPolicies: {enabled: true}\n"},
		{"base+components/whole-gpus", "gpuAgent: {devicePlugin: {wholeGPUs: true}}\n"},
		{"overlays/local", string(localValues)},
	} {
		t.Run(strings.ReplaceAll(tc.kustomize, "/", "_"), func(t *testing.T) {
			k := buildOne(t, builds, tc.kustomize)
			// The Namespace too: the kustomize base has it.
			h := chartBuild(t, c, "chart", "gpufleet-system", "createNamespace: true\n"+tc.vals)
			want := map[string]*unstructured.Unstructured{}
			for _, u := range k.objs {
				u = comparable(t, u)
				want[key(u)] = u
			}
			got := map[string]*unstructured.Unstructured{}
			for _, u := range h.objs {
				u = comparable(t, u)
				got[key(u)] = u
			}
			for _, k := range slices.Sorted(maps.Keys(want)) {
				g, ok := got[k]
				if !ok {
					t.Errorf("%s: the chart (%q) lacks it", k, tc.vals)
					continue
				}
				if diff := cmp.Diff(want[k].Object, g.Object); diff != "" {
					t.Errorf("%s differs (-kustomize +chart):\n%s", k, diff)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(got)) {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: the chart (%q) has it, kustomize %s does not", k, tc.vals, tc.kustomize)
				}
			}
		})
	}
}

// TestChartRejectsBadValues: values.schema.json and the templates' checks
// fail the install, naming the field and what is wrong.
func TestChartRejectsBadValues(t *testing.T) {
	e := newEnv(t)
	c := loadChart(t, e)
	for _, tc := range []struct {
		vals string
		want []string // every one in the error
	}{
		{"gpuAgnt: {enabled: true}", []string{"gpuAgnt"}},
		{"gpuAgent: {interval: 5}", []string{"/gpuAgent/interval", "string"}},
		{"gpuAgent: {interval: fast}", []string{"/gpuAgent/interval", "does not match pattern"}},
		{"gpuAgent: {nvml: simulated}", []string{"/gpuAgent/nvml"}},
		{"gpuAgent: {devicePlugin: {whole: true}}", []string{"/gpuAgent/devicePlugin", "whole"}},
		{"gpuAgent: {resources: {limits: {memory: lots}}}", []string{"/gpuAgent/resources/limits/memory"}},
		{"gpuAgent: {extraArgs: [v=2]}", []string{"/gpuAgent/extraArgs/0"}},
		{"images: {gpuAgent: {digest: sha256:abc}}", []string{"/images/gpuAgent/digest"}},
		{"images: {scheduler: {tag: \"\"}}", []string{"/images/scheduler/tag"}},
		{"metricsAdapter: {replicas: 0}", []string{"/metricsAdapter/replicas", "minimum"}},
		{"metricsAdapter: {prometheusURL: prometheus:9090}", []string{"/metricsAdapter/prometheusURL"}},
		{"metricsAdapter: {costPrices: {models: {V100M16: {onDemand: 2.48}}}}", []string{"/metricsAdapter/costPrices", "spot"}},
		{"metricsAdapter: {costPrices: {models: {V100M16: {onDemand: -1, spot: 0.7}}}}", []string{"/metricsAdapter/costPrices", "onDemand"}},
		{"metricsAdapter: {apiServices: {customMetrics: false, externalMetrics: false}}", []string{"metricsAdapter.apiServices", "customMetrics, externalMetrics or both"}},
		{"scheduler: {strategy: Fastest}", []string{"/scheduler/strategy", "GPUFleet"}},
		{"scheduler: {schedulerName: GPU_Scheduler}", []string{"/scheduler/schedulerName"}},
		{"scheduler: {typicalPodCoveragePercent: 101}", []string{"/scheduler/typicalPodCoveragePercent"}},
		{"monitoring: {labels: {release: 1}}", []string{"/monitoring/labels/release"}},
		{"networkPolicies: {prometheusNamespace: Monitoring}", []string{"/networkPolicies/prometheusNamespace"}},
	} {
		_, err := renderChart(c, "gpufleet-system", values(t, tc.vals))
		if err == nil {
			t.Errorf("values %s: rendered, want an error", tc.vals)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("values %s: error %q does not say %q", tc.vals, err, w)
			}
		}
	}
}

// TestChartSchemaStrategies: the schema accepts exactly GPUPack's strategies.
func TestChartSchemaStrategies(t *testing.T) {
	e := newEnv(t)
	c := loadChart(t, e)
	for _, s := range validation.Strategies {
		if _, err := renderChart(c, "gpufleet-system", values(t, "scheduler: {strategy: "+s+"}")); err != nil {
			t.Errorf("strategy %s: %v", s, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(chartDir(e), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"GPUClustering"`); n != 1 {
		t.Errorf("values.schema.json names GPUClustering %d times, want once (in the strategy enum)", n)
	}
}

// TestChartValues: each value changes what it says, and only that.
func TestChartValues(t *testing.T) {
	e := newEnv(t)
	c := loadChart(t, e)
	find := func(b built, kind, name string) *unstructured.Unstructured {
		t.Helper()
		for _, u := range b.objs {
			if u.GetKind() == kind && u.GetName() == name {
				return u
			}
		}
		t.Fatalf("%s: no %s %s", b.name, kind, name)
		return nil
	}
	pod := func(b built, kind, name string) corev1.PodTemplateSpec {
		t.Helper()
		ws, err := workloads([]*unstructured.Unstructured{find(b, kind, name)})
		if err != nil || len(ws) != 1 {
			t.Fatalf("%s: %s %s: %v", b.name, kind, name, err)
		}
		return ws[0].tmpl
	}
	count := func(b built, kind string) int {
		n := 0
		for _, u := range b.objs {
			if u.GetKind() == kind {
				n++
			}
		}
		return n
	}

	t.Run("namespace and kubelet directory", func(t *testing.T) {
		b := chartBuild(t, c, "ns", "gpu-ops", "createNamespace: true\ngpuAgent: {kubeletDir: /var/lib/k0s/kubelet}")
		for _, u := range b.objs {
			ns := u.GetNamespace()
			switch {
			case u.GetKind() == "Namespace":
				if u.GetName() != "gpu-ops" {
					t.Errorf("Namespace %s, want gpu-ops", u.GetName())
				}
			case ns != "" && ns != "gpu-ops" && ns != "kube-system":
				t.Errorf("%s in namespace %s, want gpu-ops", key(u), ns)
			}
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, s := range subjects {
				s := s.(map[string]any)
				if s["namespace"] != "gpu-ops" && s["name"] != "horizontal-pod-autoscaler" {
					t.Errorf("%s: subject %v, want namespace gpu-ops", key(u), s)
				}
			}
		}
		as := find(b, "APIService", "v1beta1.custom.metrics.k8s.io")
		if ns, _, _ := unstructured.NestedString(as.Object, "spec", "service", "namespace"); ns != "gpu-ops" {
			t.Errorf("APIService's Service namespace %q", ns)
		}
		if !slices.Contains(pod(b, "Deployment", "gpufleet-metrics-adapter").Spec.Containers[0].Args, "--serving-cert-secret=gpu-ops/gpufleet-metrics-adapter-serving-cert") {
			t.Error("the adapter's --serving-cert-secret is not in gpu-ops")
		}
		cfg, _, _ := unstructured.NestedString(find(b, "ConfigMap", "gpufleet-scheduler-config").Object, "data", "scheduler-config.yaml")
		if !strings.Contains(cfg, "resourceNamespace: gpu-ops") {
			t.Errorf("the scheduler's Lease is not in gpu-ops:\n%s", cfg)
		}
		for _, v := range pod(b, "DaemonSet", "gpufleet-gpu-agent").Spec.Volumes {
			if v.HostPath != nil && !strings.HasPrefix(v.HostPath.Path, "/var/lib/k0s/kubelet/") {
				t.Errorf("agent hostPath %s, want under /var/lib/k0s/kubelet", v.HostPath.Path)
			}
		}
	})

	t.Run("no device plugin", func(t *testing.T) {
		spec := pod(chartBuild(t, c, "dp", "gpufleet-system", "gpuAgent: {devicePlugin: {enabled: false}}"), "DaemonSet", "gpufleet-gpu-agent").Spec
		args := spec.Containers[0].Args
		if !slices.Contains(args, "--device-plugin=false") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--device-plugin-resources") }) {
			t.Errorf("args %v", args)
		}
		for _, v := range spec.Volumes {
			if v.Name == "device-plugins" {
				t.Error("the device-plugin directory is still mounted")
			}
		}
	})

	t.Run("options", func(t *testing.T) {
		b := chartBuild(t, c, "options", "gpufleet-system", chartRenders[2].vals)
		agent := pod(b, "DaemonSet", "gpufleet-gpu-agent").Spec
		if got, want := agent.Containers[0].Image, "registry.example.com/gpufleet/gpu-agent@sha256:"+strings.Repeat("ab", 32); got != want {
			t.Errorf("agent image %s, want %s", got, want)
		}
		if agent.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent || len(agent.ImagePullSecrets) != 1 || agent.RuntimeClassName == nil || *agent.RuntimeClassName != "nvidia" || agent.NodeSelector["pool"] != "gpu" {
			t.Errorf("agent pod spec: pull policy %q, secrets %v, runtime class %v, node selector %v", agent.Containers[0].ImagePullPolicy, agent.ImagePullSecrets, agent.RuntimeClassName, agent.NodeSelector)
		}
		if !slices.Contains(agent.Containers[0].Args, "--device-plugin-resources=gpufleet.io/gpu-milli,nvidia.com/gpu") {
			t.Errorf("agent args %v", agent.Containers[0].Args)
		}
		adapter := pod(b, "Deployment", "gpufleet-metrics-adapter").Spec
		for _, want := range []string{"--prometheus-url=http://prometheus-operated.monitoring.svc:9090", "--cost-prices=/etc/gpufleet/cost/prices.yaml", "--ca-bundle-apiservices=v1beta1.custom.metrics.k8s.io,v1beta2.custom.metrics.k8s.io"} {
			if !slices.Contains(adapter.Containers[0].Args, want) {
				t.Errorf("adapter args %v lack %s", adapter.Containers[0].Args, want)
			}
		}
		if n := count(b, "APIService"); n != 2 {
			t.Errorf("%d APIServices, want the two of custom.metrics.k8s.io", n)
		}
		// The adapter must accept the price table the chart writes.
		prices, _, _ := unstructured.NestedString(find(b, "ConfigMap", "gpufleet-cost-prices").Object, "data", "prices.yaml")
		file := filepath.Join(t.TempDir(), "prices.yaml")
		if err := os.WriteFile(file, []byte(prices), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cost.LoadPrices(file); err != nil {
			t.Errorf("the adapter refuses the chart's prices: %v\n%s", err, prices)
		}
		cfg, _, _ := unstructured.NestedString(find(b, "ConfigMap", "gpufleet-scheduler-config").Object, "data", "scheduler-config.yaml")
		for _, want := range []string{"schedulerName: gpu-scheduler", "strategy: FGD"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("scheduler config lacks %q:\n%s", want, cfg)
			}
		}
		if n := count(b, "PrometheusRule"); n != 0 {
			t.Errorf("%d PrometheusRules with monitoring.rules=false", n)
		}
		pm := find(b, "PodMonitor", "gpufleet-gpu-agent")
		eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
		if len(eps) != 1 || eps[0].(map[string]any)["interval"] != "30s" {
			t.Errorf("agent PodMonitor endpoints %v, want interval 30s", eps)
		}
		np := find(b, "NetworkPolicy", "gpufleet-scheduler")
		if !strings.Contains(string(mustJSON(t, np)), `"kubernetes.io/metadata.name":"observability"`) {
			t.Errorf("scheduler NetworkPolicy does not admit namespace observability: %s", mustJSON(t, np))
		}
	})

	t.Run("components off", func(t *testing.T) {
		b := chartBuild(t, c, "off", "gpufleet-system", "createNamespace: false\nscheduler: {enabled: false}\ngpuAgent: {enabled: false}\nmonitoring: {enabled: true}\nnetworkPolicies: {enabled: true}\n")
		for _, u := range b.objs {
			if u.GetKind() == "Namespace" || strings.Contains(u.GetName(), "scheduler") || strings.Contains(u.GetName(), "gpu-agent") {
				t.Errorf("%s rendered with its component off", key(u))
			}
		}
	})
}

func mustJSON(t *testing.T, u *unstructured.Unstructured) []byte {
	t.Helper()
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestChartPodTemplates: the chart's workloads follow the pod rules the
// kustomize builds follow (TestPodTemplates), whatever the values.
func TestChartPodTemplates(t *testing.T) {
	e := newEnv(t)
	for _, b := range allChartBuilds(t, e) {
		ws, err := workloads(b.objs)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if len(ws) != 3 {
			t.Errorf("%s: %d workloads, want 3", b.name, len(ws))
		}
		for _, w := range ws {
			for _, p := range podProblems(w.tmpl.Spec, exceptions[short(w.obj)]) {
				t.Errorf("%s (%s): %s", short(w.obj), b.name, p)
			}
		}
	}
}

// TestHelmVersionsAgree: the helm CLI the real-node test installs with
// (hack/helm) is the Helm release the chart is rendered and linted with.
func TestHelmVersionsAgree(t *testing.T) {
	e := newEnv(t)
	version := func(gomod string) string {
		data, err := os.ReadFile(filepath.Join(e.root, gomod))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?helm\.sh/helm/v4 (v\S+)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s requires no helm.sh/helm/v4", gomod)
		}
		return string(m[1])
	}
	if main, cli := version("go.mod"), version("hack/helm/go.mod"); main != cli {
		t.Errorf("go.mod requires helm %s, hack/helm/go.mod %s: keep them the same", main, cli)
	}
}

// TestChartPackage: `helm package` stores the monitoring files behind the
// files/monitoring link, so the packaged chart renders what the directory
// does.
func TestChartPackage(t *testing.T) {
	e := newEnv(t)
	c := loadChart(t, e)
	archive, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	packaged, err := loader.Load(archive)
	if err != nil {
		t.Fatalf("loading %s: %v", archive, err)
	}
	vals := values(t, chartRenders[1].vals)
	want, err := renderChart(c, "gpufleet-system", vals)
	if err != nil {
		t.Fatal(err)
	}
	got, err := renderChart(packaged, "gpufleet-system", vals)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the packaged chart renders otherwise (-directory +package):\n%s", diff)
	}
	if !strings.Contains(got, "GPUFleetGPUUnhealthy") || !strings.Contains(got, "gpufleet-dashboard.json") {
		t.Error("the packaged chart's render lacks the alerts or the dashboard")
	}
}

// BenchmarkChartRender: `helm template` of the chart with everything on,
// in process (schema validation and the engine; loading excluded).
func BenchmarkChartRender(b *testing.B) {
	e := newEnv(b)
	c := loadChart(b, e)
	vals := values(b, chartRenders[1].vals)
	for b.Loop() {
		if _, err := renderChart(c, "gpufleet-system", vals); err != nil {
			b.Fatal(err)
		}
	}
}
