package router

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const exampleRules = `
apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
rateLimit: {requestsPerSecond: 1000}
backends:
- name: commercial
  service: {name: commercial-valuation, port: http}
- name: general
  pods: {selector: {app: property-value}, port: 8000}
- name: local
  endpoints: ["127.0.0.1:8000"]
routes:
- name: commercial
  match: {model: property-value, parameters: {propertyType: commercial}}
  backends: [{backend: commercial}]
  rateLimit: {requestsPerSecond: 50, burst: 10}
- name: canary
  match: {model: property-value}
  backends:
  - {backend: general, weight: 90, version: "1"}
  - {backend: general, weight: 10, version: "2"}
- name: default
  backends: [{backend: local}]
`

func i32(v int32) *int32 { return &v }

func TestDecodeExample(t *testing.T) {
	got, err := Decode([]byte(exampleRules), "models")
	if err != nil {
		t.Fatal(err)
	}
	want := &Rules{
		APIVersion: APIVersion, Kind: Kind,
		RateLimit: &RateLimit{RequestsPerSecond: 1000, Burst: 1000},
		Backends: []Backend{
			{Name: "commercial", Service: &ServiceRef{Name: "commercial-valuation", Namespace: "models", Port: "http"}, MetricsPath: "/metrics"},
			{Name: "general", Pods: &PodSelector{Namespace: "models", Selector: map[string]string{"app": "property-value"}, Port: 8000}, MetricsPath: "/metrics"},
			{Name: "local", Endpoints: []string{"127.0.0.1:8000"}, MetricsPath: "/metrics"},
		},
		Routes: []Route{
			{Name: "commercial", Match: Match{Model: "property-value", Parameters: map[string]string{"propertyType": "commercial"}},
				Backends: []WeightedBackend{{Backend: "commercial", Weight: i32(100)}}, RateLimit: &RateLimit{RequestsPerSecond: 50, Burst: 10}},
			{Name: "canary", Match: Match{Model: "property-value"},
				Backends: []WeightedBackend{{Backend: "general", Weight: i32(90), Version: "1"}, {Backend: "general", Weight: i32(10), Version: "2"}}},
			{Name: "default", Backends: []WeightedBackend{{Backend: "local", Weight: i32(100)}}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded rules (-want +got):\n%s", diff)
	}
}

// TestDecodeErrors checks that each problem is named, all of them at once.
func TestDecodeErrors(t *testing.T) {
	head := "apiVersion: router.gpufleet.io/v1alpha1\nkind: RoutingRules\nbackends:\n- name: a\n  endpoints: [\"127.0.0.1:1\"]\n- name: b\n  endpoints: [\"127.0.0.1:2\"]\n"
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{{
		name: "unknown field",
		yaml: head + "routes:\n- name: r\n  backends: [{backend: a}]\n  timeout: 3s\n",
		want: []string{`unknown field "timeout"`},
	}, {
		name: "unknown field in match",
		yaml: head + "routes:\n- name: r\n  match: {modle: x}\n  backends: [{backend: a}]\n",
		want: []string{`unknown field "modle"`},
	}, {
		name: "duplicate field",
		yaml: head + "routes:\n- name: r\n  name: s\n  backends: [{backend: a}]\n",
		want: []string{`"name" already set`},
	}, {
		name: "unreachable after catch-all, weights, unknown backend",
		yaml: head + `routes:
- name: all
  backends: [{backend: a, weight: 60}, {backend: b, weight: 30}]
- name: later
  match: {model: m}
  backends: [{backend: nope}]
`,
		want: []string{
			"routes[0].backends: Invalid value: 90: weights must sum to 100",
			`routes[1]: Invalid value: "later": unreachable: route 0 (all) before it matches every request`,
			`routes[1].backends[0].backend: Not found: "nope"`,
		},
	}, {
		name: "same match twice",
		yaml: head + "routes:\n- name: r\n  match: {model: m, headers: {X-Tenant: a}}\n  backends: [{backend: a}]\n- name: s\n  match: {model: m, headers: {x-tenant: a}}\n  backends: [{backend: b}]\n",
		want: []string{`routes[1].match: Invalid value: "s": unreachable: route 0 (r) has the same match`},
	}, {
		name: "missing weight, bad limit, bad backend source",
		yaml: `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
rateLimit: {requestsPerSecond: 0, burst: 1}
backends:
- name: a
- name: b
  endpoints: ["nohost"]
routes:
- name: r
  backends: [{backend: a, weight: 100}, {backend: b}]
`,
		want: []string{
			"backends[0]: Invalid value: \"a\": set exactly one of service, pods and endpoints (0 set)",
			`backends[1].endpoints[0]: Invalid value: "nohost": want host:port`,
			"routes[0].backends[1].weight: Required value",
			"rateLimit.requestsPerSecond: Invalid value: 0: must be positive",
		},
	}, {
		name: "wrong kind and version",
		yaml: "apiVersion: v1\nkind: ConfigMap\nbackends: []\nroutes: []\n",
		want: []string{`apiVersion: Unsupported value: "v1"`, `kind: Unsupported value: "ConfigMap"`, "routes: Required value"},
	}, {
		name: "weightsFrom needs two service backends",
		yaml: head + "routes:\n- name: r\n  backends: [{backend: a}]\n  weightsFrom: {rollout: {name: x}}\n",
		want: []string{"routes[0].backends: Invalid value: 1: a route with weightsFrom splits across exactly two Service backends"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.yaml), "models")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(exampleRules))
	f.Add([]byte("apiVersion: router.gpufleet.io/v1alpha1\nkind: RoutingRules\nroutes: [{name: a, backends: [{backend: x}]}]"))
	f.Add([]byte("{]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data, "ns")
		if err != nil {
			return
		}
		// Whatever decodes is valid and compiles into a router.
		if errs := r.Validate(); len(errs) > 0 {
			t.Fatalf("Decode returned rules that do not validate: %v", errs)
		}
		if _, err := New(Config{QueueScrapeInterval: -1}, r); err != nil {
			t.Fatalf("valid rules refused by New: %v", err)
		}
	})
}

// TestShippedRules: the example manifests' rules decode.
func TestShippedRules(t *testing.T) {
	data, err := os.ReadFile("../../../manifests/examples/model-router/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(data, "ml-production"); err != nil {
		t.Error(err)
	}
}
