package app

import (
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"
)

// parseOptions parses args as the command would.
func parseOptions(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return o
}

var flagName = regexp.MustCompile(`--([a-z][a-z-]*)`)

// namedFlags is the flag each line of err names first, sorted.
func namedFlags(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if m := flagName.FindStringSubmatch(line); m != nil {
			out = append(out, m[1])
		} else {
			out = append(out, "?"+line)
		}
	}
	sort.Strings(out)
	return out
}

func TestDefaults(t *testing.T) {
	type view struct {
		ScrapeInterval, ScrapeTimeout, RateWindow, PrometheusWindow, PrometheusTimeout time.Duration
		ScrapeConcurrency, MaxSeriesPerTarget                                          int
		AgentSelector, PrometheusURL, PrometheusNodeLabel, Name                        string
	}
	want := view{
		ScrapeInterval: time.Second, ScrapeTimeout: 800 * time.Millisecond, RateWindow: 2 * time.Second,
		PrometheusWindow: time.Minute, PrometheusTimeout: 5 * time.Second,
		ScrapeConcurrency: 64, MaxSeriesPerTarget: 10000,
		AgentSelector: "app.kubernetes.io/name=gpu-agent", PrometheusNodeLabel: "node", Name: "gpufleet-metrics-adapter",
	}
	o := parseOptions(t)
	got := view{
		o.ScrapeInterval, o.ScrapeTimeout, o.RateWindow, o.PrometheusWindow, o.PrometheusTimeout,
		o.ScrapeConcurrency, o.MaxSeriesPerTarget,
		o.AgentSelector, o.PrometheusURL, o.PrometheusNodeLabel, o.Name,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // flags named by the errors; none: valid
	}{
		{name: "defaults"},
		{name: "embedded source tuned", args: []string{"--scrape-interval=500ms", "--scrape-timeout=500ms", "--rate-window=1s", "--scrape-concurrency=1", "--max-series-per-target=1", "--agent-pod-selector=app in (gpu-agent,dcgm)"}},
		{name: "empty agent selector", args: []string{"--agent-pod-selector="}},
		{name: "prometheus source", args: []string{"--prometheus-url=http://prometheus.monitoring:9090", "--prometheus-rate-window=30s", "--prometheus-timeout=1s", "--prometheus-node-label=instance"}},
		{name: "https prometheus with a path", args: []string{"--prometheus-url=https://thanos.example.com/prom"}},
		{name: "prometheus flags ignored without a URL", args: []string{"--prometheus-rate-window=0", "--prometheus-timeout=-1s"}},

		{name: "zero interval", args: []string{"--scrape-interval=0"}, want: []string{"scrape-interval", "scrape-timeout"}},
		{name: "negative interval", args: []string{"--scrape-interval=-1s", "--scrape-timeout=-2s", "--rate-window=-2s"}, want: []string{"scrape-interval", "scrape-timeout"}},
		{name: "zero timeout", args: []string{"--scrape-timeout=0"}, want: []string{"scrape-timeout"}},
		{name: "timeout over the interval", args: []string{"--scrape-timeout=1001ms"}, want: []string{"scrape-timeout"}},
		{name: "no concurrency", args: []string{"--scrape-concurrency=0"}, want: []string{"scrape-concurrency"}},
		{name: "rate window under two intervals", args: []string{"--rate-window=1999ms"}, want: []string{"rate-window"}},
		{name: "rate window under two longer intervals", args: []string{"--scrape-interval=5s", "--rate-window=9s"}, want: []string{"rate-window"}},
		{name: "no series", args: []string{"--max-series-per-target=0"}, want: []string{"max-series-per-target"}},
		{name: "bad agent selector", args: []string{"--agent-pod-selector=app in ("}, want: []string{"agent-pod-selector"}},
		{name: "prometheus URL without scheme", args: []string{"--prometheus-url=prometheus:9090"}, want: []string{"prometheus-url"}},
		{name: "prometheus URL of another scheme", args: []string{"--prometheus-url=ftp://prometheus:9090"}, want: []string{"prometheus-url"}},
		{name: "prometheus URL without host", args: []string{"--prometheus-url=http://"}, want: []string{"prometheus-url"}},
		{name: "prometheus URL that does not parse", args: []string{"--prometheus-url=http://[::1"}, want: []string{"prometheus-url"}},
		{name: "prometheus window", args: []string{"--prometheus-url=http://p:9090", "--prometheus-rate-window=0"}, want: []string{"prometheus-rate-window"}},
		{name: "prometheus timeout", args: []string{"--prometheus-url=http://p:9090", "--prometheus-timeout=-1s"}, want: []string{"prometheus-timeout"}},
		{name: "API server flag", args: []string{"--secure-port=70000"}, want: []string{"secure-port"}},
		{
			name: "every error at once",
			args: []string{
				"--scrape-interval=2s", "--scrape-timeout=3s", "--scrape-concurrency=0", "--rate-window=1s", "--max-series-per-target=-5",
				"--agent-pod-selector=!!", "--prometheus-url=localhost", "--prometheus-rate-window=0", "--prometheus-timeout=0", "--secure-port=-1",
			},
			want: []string{
				"agent-pod-selector", "max-series-per-target", "prometheus-rate-window", "prometheus-timeout", "prometheus-url",
				"rate-window", "scrape-concurrency", "scrape-timeout", "secure-port",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parseOptions(t, tc.args...).Validate()
			sort.Strings(tc.want)
			if diff := cmp.Diff(tc.want, namedFlags(err), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Validate() = %v\nflags named (-want +got):\n%s", err, diff)
			}
		})
	}
}

// Validate also works on options that were never bound to flags.
func TestValidateWithoutFlags(t *testing.T) {
	o := NewOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("Validate of the defaults = %v, want nil", err)
	}
	o.ScrapeConcurrency = 0
	o.PrometheusURL = "http://p:9090"
	o.PrometheusTimeout = 0
	if diff := cmp.Diff([]string{"prometheus-timeout", "scrape-concurrency"}, namedFlags(o.Validate())); diff != "" {
		t.Errorf("flags named (-want +got):\n%s", diff)
	}
}
