package promsource

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	rt := http.DefaultTransport
	tests := []struct {
		name    string
		url     string
		opts    []Option
		wantErr []string // substrings of the error; none: no error
	}{
		{name: "defaults", url: "http://prometheus:9090"},
		{name: "https with path", url: "https://monitoring.example/prometheus/"},
		{
			name: "every option",
			url:  "http://127.0.0.1:9090",
			opts: []Option{
				WithHTTPClient(&http.Client{}), WithRateWindow(30 * time.Second), WithQueryTimeout(time.Second),
				WithNamespaceLabel("ns"), WithPodLabel("pod_name"), WithNodeLabel("instance_node"),
			},
		},
		{name: "round tripper", url: "http://p:9090", opts: []Option{WithRoundTripper(rt)}},
		{name: "no scheme", url: "prometheus:9090", wantErr: []string{`server URL "prometheus:9090" must be http:// or https://`}},
		{name: "no host", url: "http://", wantErr: []string{"with a host"}},
		{name: "unparsable", url: "http://a b", wantErr: []string{"server URL: "}},
		{name: "query", url: "http://p:9090/?x=1", wantErr: []string{"must have no query or fragment"}},
		{name: "password redacted", url: "ftp://u:pw@p", wantErr: []string{`"ftp://u:xxxxx@p"`}},
		{
			name: "every error at once",
			url:  "p:9090",
			opts: []Option{
				WithRateWindow(0), WithQueryTimeout(-time.Second),
				WithNamespaceLabel("k8s.io/namespace"), WithPodLabel("__pod"), WithNodeLabel(""),
			},
			wantErr: []string{
				"rate window 0s must be a positive whole number of milliseconds",
				"query timeout -1s must be positive",
				`namespace label: "k8s.io/namespace" is not a valid Prometheus label name`,
				`pod label: label name "__pod" is reserved`,
				`node label: "" is not a valid Prometheus label name`,
				"server URL",
			},
		},
		{name: "sub-millisecond window", url: "http://p", opts: []Option{WithRateWindow(1500 * time.Microsecond)}, wantErr: []string{"rate window 1.5ms"}},
		{
			name:    "same labels",
			url:     "http://p",
			opts:    []Option{WithPodLabel("namespace"), WithNodeLabel("namespace")},
			wantErr: []string{`pod label "namespace" is also the namespace label`, `node label "namespace" is also the namespace label`},
		},
		{name: "nil client", url: "http://p", opts: []Option{WithHTTPClient(nil)}, wantErr: []string{"HTTP client must not be nil"}},
		{name: "nil round tripper", url: "http://p", opts: []Option{WithRoundTripper(nil)}, wantErr: []string{"round tripper must not be nil"}},
		{
			name:    "client and round tripper",
			url:     "http://p",
			opts:    []Option{WithHTTPClient(&http.Client{}), WithRoundTripper(rt)},
			wantErr: []string{"either an HTTP client or a round tripper"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.url, tt.opts...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if s.cfg.client == nil {
					t.Error("no HTTP client")
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New("http://p:9090/prom")
	if err != nil {
		t.Fatal(err)
	}
	if s.endpoint != "http://p:9090/prom/api/v1/query" {
		t.Errorf("endpoint %s", s.endpoint)
	}
	c := s.cfg
	if c.window != time.Minute || c.timeout != 5*time.Second ||
		c.namespaceLabel != "namespace" || c.podLabel != "pod" || c.nodeLabel != "node" {
		t.Errorf("defaults %+v", c)
	}
	if c.client == http.DefaultClient || c.client.Transport == http.DefaultTransport {
		t.Error("the default client shares the process-wide client or transport")
	}
}
