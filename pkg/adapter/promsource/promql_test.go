package promsource

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// requirement builds a requirement without Kubernetes' validation, so that
// tests can pass what a hand-built selector could hold.
func requirement(key string, op selection.Operator, vals ...string) labels.Requirement {
	r, _ := labels.NewRequirement(key, op, vals)
	return *r
}

func selector(reqs ...labels.Requirement) labels.Selector {
	return labels.NewSelector().Add(reqs...)
}

func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"ns", `"ns"`},
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", `"a\nb"`},
		{"a\tb\rc", `"a\tb\rc"`},
		{"\x00\x7f", `"\u0000\u007f"`},
		{"é日本", `"é日本"`},
		{"\ufffd", `"\ufffd"`}, // PromQL's lexer rejects a literal U+FFFD
		{"\u2028", `"\u2028"`}, // line separator: not printable
		{"\U000e0001", `"\U000e0001"`},
		{`a\.b|c`, `"a\\.b|c"`},
	}
	for _, tt := range tests {
		got, err := quote(tt.in)
		if err != nil {
			t.Errorf("quote(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if _, err := quote("a\xffb"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("quote(invalid UTF-8) error = %v, want one about UTF-8", err)
	}
}

func TestSelectorMatchers(t *testing.T) {
	reserved := []string{"namespace", "pod", "node"}
	tests := []struct {
		name       string
		sel        labels.Selector
		want       []string
		unselected bool
		wantErr    []string // substrings of the error
	}{
		{name: "nil", sel: nil},
		{name: "everything", sel: labels.Everything()},
		{name: "nothing", sel: labels.Nothing(), unselected: true},
		{
			name: "equals",
			sel:  selector(requirement("model", selection.Equals, "m")),
			want: []string{`model="m"`},
		},
		{
			name: "double equals",
			sel:  selector(requirement("model", selection.DoubleEquals, "m")),
			want: []string{`model="m"`},
		},
		{
			name: "not equals",
			sel:  selector(requirement("model", selection.NotEquals, "m")),
			want: []string{`model!="m"`},
		},
		{
			name: "in, sorted and regex-quoted",
			sel:  selector(requirement("model", selection.In, "b.v2", "a", "a")),
			want: []string{`model=~"a|b\\.v2"`},
		},
		{
			name: "notin",
			sel:  selector(requirement("code", selection.NotIn, "500", "503")),
			want: []string{`code!~"500|503"`},
		},
		{
			name: "exists",
			sel:  selector(requirement("model", selection.Exists)),
			want: []string{`model=~".+"`},
		},
		{
			name: "does not exist",
			sel:  selector(requirement("model", selection.DoesNotExist)),
			want: []string{`model=""`},
		},
		{
			name: "several, in key order",
			sel:  mustParse(t, "zone!=us,model in (m),code"),
			want: []string{`code=~".+"`, `model=~"m"`, `zone!="us"`},
		},
		{
			name: "escaped values",
			sel: selector(
				requirement("a", selection.Equals, "x\"y\\z\nw"),
				requirement("b", selection.In, `(.*)`, "a|b"),
			),
			want: []string{`a="x\"y\\z\nw"`, `b=~"\\(\\.\\*\\)|a\\|b"`},
		},
		{
			name:    "greater than",
			sel:     selector(requirement("gpus", selection.GreaterThan, "1")),
			wantErr: []string{`"gpus>1"`, `operator "gt" is not supported`},
		},
		{
			name:    "less than",
			sel:     selector(requirement("gpus", selection.LessThan, "1")),
			wantErr: []string{`operator "lt" is not supported`},
		},
		{
			name:    "kubernetes-style key",
			sel:     selector(requirement("app.kubernetes.io/name", selection.Equals, "x")),
			wantErr: []string{`"app.kubernetes.io/name" is not a valid Prometheus label name`},
		},
		{
			name:    "dash",
			sel:     selector(requirement("model-name", selection.Equals, "x")),
			wantErr: []string{`"model-name" is not a valid Prometheus label name`},
		},
		{
			name:    "reserved prefix",
			sel:     selector(requirement("__name__", selection.Equals, "up")),
			wantErr: []string{`"__name__" is reserved`},
		},
		{
			name:    "adapter's labels",
			sel:     mustParse(t, "namespace=a,pod=b,node=c,model=m"),
			wantErr: []string{`label "namespace" cannot be selected`, `label "pod" cannot be selected`, `label "node" cannot be selected`},
		},
		{
			name:    "invalid UTF-8",
			sel:     selector(requirement("model", selection.Equals, "\xff")),
			wantErr: []string{"label model", "UTF-8"},
		},
		{
			name:    "equals without a value",
			sel:     selector(requirement("model", selection.Equals)),
			wantErr: []string{"needs exactly one value"},
		},
		{
			name:    "in without values",
			sel:     selector(requirement("model", selection.In)),
			wantErr: []string{"needs at least one value"},
		},
		{
			name:    "exists with a value",
			sel:     selector(requirement("model", selection.Exists, "x")),
			wantErr: []string{"takes no values"},
		},
		{
			name:    "unknown operator",
			sel:     selector(requirement("model", selection.Operator("~="), "x")),
			wantErr: []string{`operator "~=" is not supported`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, selectable, err := selectorMatchers(tt.sel, reserved...)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, matchers %q", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if selectable == tt.unselected {
				t.Errorf("selectable = %v, want %v", selectable, !tt.unselected)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matchers (-want +got):\n%s", diff)
			}
		})
	}
}

func mustParse(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func TestBuildQuery(t *testing.T) {
	podGroups := []string{"namespace", "pod"}
	tests := []struct {
		name     string
		metric   source.Metric
		groupBy  []string
		matchers []string
		window   time.Duration
		want     string
		wantErr  string
	}{
		{
			name:     "rate",
			metric:   source.PodMetrics[source.RequestsPerSecond],
			groupBy:  podGroups,
			matchers: []string{`namespace="ns"`, `pod=~"a|b|c"`, `model="m"`},
			window:   time.Minute,
			want:     `sum by (namespace, pod) (rate(inference_requests_total{namespace="ns",pod=~"a|b|c",model="m"}[1m]))`,
		},
		{
			name:     "sum",
			metric:   source.PodMetrics[source.InferenceQueueDepth],
			groupBy:  podGroups,
			matchers: []string{`namespace="ns"`, `pod="a"`},
			window:   time.Minute,
			want:     `sum by (namespace, pod) (inference_queue_depth{namespace="ns",pod="a"})`,
		},
		{
			name:     "mean on agent",
			metric:   source.PodMetrics[source.GPUUtilization],
			groupBy:  podGroups,
			matchers: []string{`namespace=~"a|b"`, `pod="p"`},
			window:   time.Minute,
			want:     `avg by (namespace, pod) (gpufleet_pod_gpu_utilization_ratio{namespace=~"a|b",pod="p"})`,
		},
		{
			name:     "node mean",
			metric:   source.NodeMetrics[source.GPUUtilization],
			groupBy:  []string{"node"},
			matchers: []string{`node=~"n1|n2"`},
			window:   time.Minute,
			want:     `avg by (node) (gpufleet_gpu_utilization_ratio{node=~"n1|n2"})`,
		},
		{
			name:     "node sum",
			metric:   source.NodeMetrics[source.GPUMemoryUsedBytes],
			groupBy:  []string{"node"},
			matchers: []string{`node="n1"`},
			want:     `sum by (node) (gpufleet_gpu_memory_used_bytes{node="n1"})`,
		},
		{
			name:     "odd window",
			metric:   source.Metric{Series: "x_total", Kind: source.Rate},
			groupBy:  []string{"node"},
			matchers: []string{`node="n1"`},
			window:   1500 * time.Millisecond,
			want:     `sum by (node) (rate(x_total{node="n1"}[1500ms]))`,
		},
		{
			name:    "bad series",
			metric:  source.Metric{Series: "x-total", Kind: source.Sum},
			groupBy: []string{"node"},
			wantErr: `series "x-total" is not a valid Prometheus metric name`,
		},
		{
			name:    "bad kind",
			metric:  source.Metric{Series: "x", Kind: source.Kind(7)},
			groupBy: []string{"node"},
			wantErr: "unknown metric kind 7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildQuery(tt.metric, tt.groupBy, tt.matchers, tt.window)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("query\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:             "1m",
		90 * time.Second:        "90s",
		2 * time.Hour:           "2h",
		90 * time.Minute:        "90m",
		1500 * time.Millisecond: "1500ms",
		time.Millisecond:        "1ms",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %s, want %s", d, got, want)
		}
	}
}
