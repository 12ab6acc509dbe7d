package scrape

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestQueries(t *testing.T) {
	const omType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
	counter := func(vals ...string) []string {
		var out []string
		for _, v := range vals {
			out = append(out, "# TYPE c_total counter\nc_total "+v+"\n")
		}
		return out
	}
	codes := func(ok, failed int) string {
		return "# HELP inference_requests_total Requests.\n# TYPE inference_requests_total counter\n" +
			`inference_requests_total{code="200",model="m"} ` + strconv.Itoa(ok) + "\n" +
			`inference_requests_total{code="500",model="m"} ` + strconv.Itoa(failed) + "\n" +
			"# TYPE queue_depth gauge\n" +
			`queue_depth{queue="a"} ` + strconv.Itoa(ok) + "\n" +
			`queue_depth{queue="b"} 2.5` + "\n"
	}
	type query func(st *Store) (Value, bool)
	rate := func(metric string, match map[string]string, w time.Duration) query {
		return func(st *Store) (Value, bool) { return st.Rate("ns/p", metric, selectorOf(match), w) }
	}
	gauge := func(metric string, match map[string]string) query {
		return func(st *Store) (Value, bool) { return st.Gauge("ns/p", metric, selectorOf(match)) }
	}
	tests := []struct {
		name        string
		contentType string
		labels      map[string]string
		bodies      []string // one per second from t0
		query       query
		want        Value
		wantOK      bool
	}{
		{
			name:   "steady counter",
			bodies: counter("0", "4", "8", "12"),
			query:  rate("c_total", nil, 0),
			want:   Value{Value: 4, Timestamp: at(3), Window: 3 * time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "counter reset counts the new value",
			bodies: counter("100", "110", "5", "15"),
			query:  rate("c_total", nil, 0),
			want:   Value{Value: 25.0 / 3, Timestamp: at(3), Window: 3 * time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "window limits the samples used",
			bodies: counter("0", "1", "100", "110", "130"),
			query:  rate("c_total", nil, 2*time.Second),
			want:   Value{Value: 15, Timestamp: at(4), Window: 2 * time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "window longer than history uses what there is",
			bodies: counter("0", "10"),
			query:  rate("c_total", nil, time.Minute),
			want:   Value{Value: 10, Timestamp: at(1), Window: time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "one sample has no rate",
			bodies: counter("7"),
			query:  rate("c_total", nil, 0),
		},
		{
			name:   "counter read as gauge is its current value",
			bodies: counter("7", "9"),
			query:  gauge("c_total", nil),
			want:   Value{Value: 9, Timestamp: at(1), Series: 1}, wantOK: true,
		},
		{
			name:   "rate sums over series",
			bodies: []string{codes(0, 0), codes(10, 1), codes(20, 2)},
			query:  rate("inference_requests_total", nil, 0),
			want:   Value{Value: 11, Timestamp: at(2), Window: 2 * time.Second, Series: 2}, wantOK: true,
		},
		{
			name:   "rate of matching series only",
			bodies: []string{codes(0, 0), codes(10, 1), codes(20, 2)},
			query:  rate("inference_requests_total", map[string]string{"code": "500", "model": "m"}, 0),
			want:   Value{Value: 1, Timestamp: at(2), Window: 2 * time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "no series matches",
			bodies: []string{codes(0, 0), codes(10, 1)},
			query:  rate("inference_requests_total", map[string]string{"code": "404"}, 0),
		},
		{
			name:   "absent label does not match the empty value",
			bodies: []string{codes(0, 0), codes(10, 1)},
			query:  rate("inference_requests_total", map[string]string{"pod": ""}, 0),
		},
		{
			name:   "target labels match",
			labels: map[string]string{"pod": "p", "code": "ignored"},
			bodies: []string{codes(0, 0), codes(10, 1)},
			query:  rate("inference_requests_total", map[string]string{"pod": "p", "code": "200"}, 0),
			want:   Value{Value: 10, Timestamp: at(1), Window: time.Second, Series: 1}, wantOK: true,
		},
		{
			name:   "gauge sums over series",
			bodies: []string{codes(3, 0), codes(4, 0)},
			query:  gauge("queue_depth", nil),
			want:   Value{Value: 6.5, Timestamp: at(1), Series: 2}, wantOK: true,
		},
		{
			name:   "gauge of one series",
			bodies: []string{codes(3, 0), codes(4, 0)},
			query:  gauge("queue_depth", map[string]string{"queue": "a"}),
			want:   Value{Value: 4, Timestamp: at(1), Series: 1}, wantOK: true,
		},
		{
			name:   "gauges have no rate",
			bodies: []string{codes(3, 0), codes(4, 0)},
			query:  rate("queue_depth", nil, 0),
		},
		{
			name:   "series gone from the latest scrape is not served",
			bodies: []string{"a 1\nb 1\n", "a 2\nb 2\n", "a 3\n"},
			query:  gauge("b", nil),
		},
		{
			name:   "untyped counts as counter",
			bodies: []string{"u 1\n", "u 3\n"},
			query:  rate("u", nil, 0),
			want:   Value{Value: 2, Timestamp: at(1), Window: time.Second, Series: 1}, wantOK: true,
		},
		{
			name:        "openmetrics counter and gauge",
			contentType: omType,
			bodies: []string{
				"# TYPE req counter\n# UNIT req requests\n# HELP req Requests.\nreq_total{code=\"200\"} 10 1700000000.5 # {trace_id=\"a\"} 1 1700000000.1\nreq_created{code=\"200\"} 1700000000\n# EOF\n",
				"# TYPE req counter\nreq_total{code=\"200\"} 16 1700000001.5\nreq_created{code=\"200\"} 1700000000\n# EOF\n",
			},
			query: rate("req_total", map[string]string{"code": "200"}, 0),
			want:  Value{Value: 6, Timestamp: at(1), Window: time.Second, Series: 1}, wantOK: true,
		},
		{
			name:        "openmetrics histogram sum and count",
			contentType: omType,
			bodies: []string{
				"# TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\nlat_created 5\n# EOF\n",
				"# TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 4\nlat_sum 9\nlat_count 4\nlat_created 5\n# EOF\n",
			},
			query: rate("lat_count", nil, 0),
			want:  Value{Value: 2, Timestamp: at(1), Window: time.Second, Series: 1}, wantOK: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = textType
			}
			srv := newExpoServer(t, ct)
			clock := newFakeClock()
			s := newScraper(t, WithClock(clock.Now))
			s.SetTargets([]Target{{Key: "ns/p", URL: srv.URL, Labels: tc.labels}})
			for i, body := range tc.bodies {
				if i > 0 {
					clock.Advance(time.Second)
				}
				srv.Set(http.StatusOK, body)
				s.ScrapeOnce(context.Background())
				if st, _ := s.Store().Status("ns/p"); !st.Up {
					t.Fatalf("scrape %d failed: %v", i, st.LastError)
				}
			}
			got, ok := tc.query(s.Store())
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v (value %+v)", ok, tc.wantOK, got)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("value mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// selectorOf is the equality selector of match; nil for nil.
func selectorOf(match map[string]string) Selector {
	if match == nil {
		return nil
	}
	return labels.SelectorFromSet(match)
}

func TestSetBasedSelector(t *testing.T) {
	srv := newExpoServer(t, textType)
	s := newScraper(t)
	s.SetTargets([]Target{{Key: "ns/p", URL: srv.URL, Labels: map[string]string{"pod": "p"}}})
	srv.Set(http.StatusOK, "# TYPE q gauge\nq{model=\"a\"} 1\nq{model=\"b\"} 2\nq{model=\"c\"} 4\n")
	s.ScrapeOnce(context.Background())
	for _, tc := range []struct {
		sel  string
		want float64
		ok   bool
	}{
		{"model in (a,c)", 5, true},
		{"model notin (a)", 6, true},
		{"model!=b,pod=p", 5, true},
		{"pod", 7, true},
		{"!model", 0, false},
		{"pod=other", 0, false},
	} {
		sel, err := labels.Parse(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := s.Store().Gauge("ns/p", "q", sel)
		if ok != tc.ok || got.Value != tc.want {
			t.Errorf("Gauge(%q) = %v, %v; want %v, %v", tc.sel, got.Value, ok, tc.want, tc.ok)
		}
	}
}
