package manifests_test

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The chart is rendered and linted with Helm's own Go library (the engine,
// schema validation and linter `helm template` and `helm lint` run), for
// the Kubernetes version the tests run. Not its action package: that links
// in Go's plugin package (through kustomize), which makes the linker bind
// every symbol at start, and this test binary runs the gpu-agent, whose
// go-nvml leaves NVML's symbols to be found at run time.
var chartKubeVersion = &common.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}

const releaseName = "gpufleet"

func chartDir(e env) string { return filepath.Join(e.root, "charts", "gpufleet") }

// loadChart loads charts/gpufleet from its directory, as `helm install
// charts/gpufleet` does (the files/monitoring link included).
func loadChart(t testing.TB, e env) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(e))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return c
}

// renderChart is `helm template gpufleet charts/gpufleet -n ns -f vals`:
// the values checked against values.schema.json, the templates rendered
// offline with Helm's engine, and the manifests (not NOTES.txt, not the
// partials) joined.
func renderChart(c *chart.Chart, ns string, vals map[string]any) (string, error) {
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *chartKubeVersion
	opts := common.ReleaseOptions{Name: releaseName, Namespace: ns, Revision: 1, IsInstall: true}
	top, err := util.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, false)
	if err != nil {
		return "", err
	}
	files, err := engine.Render(c, top)
	if err != nil {
		return "", err
	}
	var manifest strings.Builder
	for _, name := range slices.Sorted(maps.Keys(files)) {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(files[name]) == "" {
			continue
		}
		fmt.Fprintf(&manifest, "---\n# Source: %s\n%s\n", name, files[name])
	}
	return manifest.String(), nil
}

// chartBuild renders the chart with vals (YAML) and decodes the objects,
// as build does for a kustomization.
func chartBuild(t testing.TB, c *chart.Chart, name, ns, vals string) built {
	t.Helper()
	v := values(t, vals)
	manifest, err := renderChart(c, ns, v)
	if err != nil {
		t.Fatalf("rendering the chart (%s): %v", name, err)
	}
	objs, err := decodeObjects([]byte(manifest))
	if err != nil {
		t.Fatalf("decoding the chart's render (%s): %v", name, err)
	}
	if len(objs) == 0 {
		t.Fatalf("the chart (%s) renders no objects", name)
	}
	return built{target: target{name: name}, yaml: []byte(manifest), objs: objs}
}

// values decodes a values file's text.
func values(t testing.TB, vals string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(vals), &v); err != nil {
		t.Fatalf("values %q: %v", vals, err)
	}
	return v
}

// chartRenders are the chart's renders every static check and the server's
// dry run cover, beside the kustomizations: the defaults, everything on,
// and everything changed that a value can change.
var chartRenders = []struct{ name, ns, vals string }{
	{"chart", "gpufleet-system", ""},
	{"chart/all", "gpufleet-system", "monitoring: {enabled: true, labels: {release: kube-prometheus-stack}}\nnetworkPolicies: {enabled: true}\n"},
	{"chart/options", "gpufleet-system", `
images:
  gpuAgent: {repository: registry.example.com/gpufleet/gpu-agent, tag: v0.1.0, digest: "sha256:` + strings.Repeat("ab", 32) + `"}
  pullPolicy: IfNotPresent
  pullSecrets: [{name: registry-example}]
gpuAgent:
  devicePlugin: {enabled: true, wholeGPUs: true}
  runtimeClassName: nvidia
  nodeSelector: {pool: gpu}
metricsAdapter:
  replicas: 3
  prometheusURL: http://prometheus-operated.monitoring.svc:9090
  apiServices: {customMetrics: true, externalMetrics: false}
  costPrices:
    currency: EUR
    models:
      V100M16: {onDemand: 2.48, spot: 0.74}
    default: {onDemand: 2.0, spot: 0.6}
scheduler:
  schedulerName: gpu-scheduler
  strategy: FGD
  priorityClassName: system-cluster-critical
monitoring: {enabled: true, interval: 30s, rules: false}
networkPolicies: {enabled: true, prometheusNamespace: observability}
`},
}

// allChartBuilds renders chartRenders.
func allChartBuilds(t testing.TB, e env) []built {
	t.Helper()
	c := loadChart(t, e)
	var out []built
	for _, r := range chartRenders {
		out = append(out, chartBuild(t, c, r.name, r.ns, r.vals))
	}
	return out
}

// helmLabels are the labels the chart adds to every object beyond the
// kustomize build's, and helmAnnotations its annotations: the only
// intended differences between the two, with the scheduler ConfigMap's
// name (kustomize appends a hash of the content; the chart keeps one name
// and rolls the pods through checksum/config instead).
var (
	helmLabels      = []string{"app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "helm.sh/chart"}
	helmAnnotations = []string{"helm.sh/resource-policy", "checksum/config"}
	hashedConfigMap = regexp.MustCompile(`^(gpufleet-scheduler-config)-[a-z0-9]{10}$`)
)

// comparable returns a copy of u without the intended differences, with
// the scheduler configuration decoded (its comments are not the object).
func comparable(t testing.TB, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	u = u.DeepCopy()
	strip := func(m map[string]any, field string, keys []string) {
		sub, ok := m[field].(map[string]any)
		if !ok {
			return
		}
		for _, k := range keys {
			delete(sub, k)
		}
		if len(sub) == 0 {
			delete(m, field)
		}
	}
	unhash := func(name string) string { return hashedConfigMap.ReplaceAllString(name, "$1") }
	meta := u.Object["metadata"].(map[string]any)
	strip(meta, "labels", helmLabels)
	strip(meta, "annotations", helmAnnotations)
	if path, ok := templatePaths[u.GetKind()]; ok {
		if tmpl, found, _ := unstructured.NestedMap(u.Object, path...); found {
			if tmeta, ok := tmpl["metadata"].(map[string]any); ok {
				strip(tmeta, "annotations", helmAnnotations)
			}
			vols, _, _ := unstructured.NestedSlice(tmpl, "spec", "volumes")
			for _, v := range vols {
				if cm, ok := v.(map[string]any)["configMap"].(map[string]any); ok {
					cm["name"] = unhash(cm["name"].(string))
				}
			}
			if vols != nil {
				_ = unstructured.SetNestedSlice(tmpl, vols, "spec", "volumes")
			}
			_ = unstructured.SetNestedMap(u.Object, tmpl, path...)
		}
	}
	if u.GetKind() == "ConfigMap" {
		u.SetName(unhash(u.GetName()))
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		if cfg, ok := data["scheduler-config.yaml"]; ok {
			var decoded map[string]any
			if err := yaml.Unmarshal([]byte(cfg), &decoded); err != nil {
				t.Fatalf("ConfigMap %s: scheduler-config.yaml: %v", u.GetName(), err)
			}
			delete(data, "scheduler-config.yaml")
			m := map[string]any{}
			for k, v := range data {
				m[k] = v
			}
			m["scheduler-config.yaml (decoded)"] = decoded
			u.Object["data"] = m
		}
	}
	return u
}
