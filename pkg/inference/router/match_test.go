package router

import (
	"math"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path                 string
		model, version, rest string
		ok                   bool
	}{
		{"/v2/models/m", "m", "", "", true},
		{"/v2/models/m/infer", "m", "", "infer", true},
		{"/v2/models/m/ready", "m", "", "ready", true},
		{"/v2/models/m/versions/2", "m", "2", "", true},
		{"/v2/models/m/versions/2/infer", "m", "2", "infer", true},
		{"/v2/models/m/versions//infer", "", "", "", false},
		{"/v2/models//infer", "", "", "", false},
		{"/v2/models/m/explain", "", "", "", false},
		{"/v2/models/m/infer/x", "", "", "", false},
		{"/v1/models/m", "", "", "", false},
	} {
		model, version, rest, ok := parsePath(tc.path)
		if model != tc.model || version != tc.version || rest != tc.rest || ok != tc.ok {
			t.Errorf("parsePath(%q) = %q %q %q %v, want %q %q %q %v", tc.path, model, version, rest, ok, tc.model, tc.version, tc.rest, tc.ok)
		}
	}
}

func TestParseParameters(t *testing.T) {
	for _, tc := range []struct {
		body    string
		want    map[string]string
		wantErr bool
	}{
		{`{"inputs":[]}`, nil, false},
		{`{"parameters":{"propertyType":"commercial","n":3,"b":true,"o":{"a": 1}},"inputs":[]}`,
			map[string]string{"propertyType": "commercial", "n": "3", "b": "true", "o": `{"a":1}`}, false},
		{`{"parameters":"x"}`, nil, true},
		{`{"inputs":[]} {}`, nil, true},
		{`[`, nil, true},
	} {
		got, err := parseParameters([]byte(tc.body))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseParameters(%s): error %v, want error %v", tc.body, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseParameters(%s) (-want +got):\n%s", tc.body, diff)
		}
	}
}

func TestRouteSelection(t *testing.T) {
	rules, err := Decode([]byte(exampleRules), "models")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{QueueScrapeInterval: -1}, rules)
	if err != nil {
		t.Fatal(err)
	}
	tbl := r.table.Load()
	for _, tc := range []struct {
		name  string
		rq    request
		route string
	}{
		{"parameter", request{model: "property-value", body: []byte(`{"parameters":{"propertyType":"commercial"},"inputs":[]}`)}, "commercial"},
		{"other parameter value", request{model: "property-value", body: []byte(`{"parameters":{"propertyType":"residential"},"inputs":[]}`)}, "canary"},
		{"metadata ignores parameters", request{model: "property-value"}, "commercial"},
		{"other model", request{model: "wide", body: []byte(`{"inputs":[]}`)}, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rq.header = http.Header{}
			rt, err := tbl.find(&tc.rq)
			if err != nil || rt == nil || rt.name != tc.route {
				t.Errorf("find = %v, %v; want route %s", rt, err, tc.route)
			}
		})
	}
}

// TestWeightedSplit draws 100,000 times from a 90/10 split: each share
// lies within 6 standard deviations of its binomial mean (a false failure
// has probability below 1e-8).
func TestWeightedSplit(t *testing.T) {
	s := &split{targets: []*target{{backend: "stable"}, {backend: "canary"}}}
	for _, w := range [][]int32{{90, 10}, {50, 50}, {100, 0}, {0, 100}} {
		s.setWeights(w)
		const n = 100000
		counts := map[string]int{}
		for range n {
			counts[s.pickRandom().backend]++
		}
		for i, name := range []string{"stable", "canary"} {
			p := float64(w[i]) / 100
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if got := float64(counts[name]); math.Abs(got-mean) > 6*sd {
				t.Errorf("weights %v: %s got %v of %d, want %v ± %.0f", w, name, got, n, mean, 6*sd)
			}
		}
	}
	// Exact: every n in [0, 100) lands by the cumulative weights.
	s.setWeights([]int32{90, 10})
	for n := range int32(100) {
		want := "stable"
		if n >= 90 {
			want = "canary"
		}
		if got := s.pick(n).backend; got != want {
			t.Errorf("pick(%d) = %s, want %s", n, got, want)
		}
	}
}

func FuzzParseParameters(f *testing.F) {
	f.Add([]byte(`{"parameters":{"propertyType":"commercial"},"inputs":[{"name":"x","data":[1,2]}]}`))
	f.Add([]byte(`{"parameters":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := parseParameters(body)
		if err != nil && params != nil {
			t.Fatalf("error %v with parameters %v", err, params)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	f.Add("/v2/models/m/versions/1/infer")
	f.Add("/v2/models/m/ready")
	f.Fuzz(func(t *testing.T, path string) {
		model, version, rest, ok := parsePath(path)
		if !ok {
			return
		}
		if got := upstreamPath(model, version, rest); got != path {
			t.Fatalf("parsePath(%q) then upstreamPath gives %q", path, got)
		}
	})
}
