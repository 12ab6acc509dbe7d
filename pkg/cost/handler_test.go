package cost

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/internal/msg"
)

func TestHandler(t *testing.T) {
	l := newTestLedger(t, WithClock(func() time.Time { return t0.Add(window) }), WithPrices(testPrices(t)))
	feed(t, l, 0, window)
	h := l.Handler()

	tests := []struct {
		name, method, query string
		code                int
		// want is a substring of the body.
		want string
	}{
		{"defaults", "GET", "", 200, `"by":"namespace"`},
		{"by workload", "GET", "?by=workload&from=2025-01-01T00:00:00Z&to=2025-01-01T06:00:00Z", 200, `"group":"ml/Deployment/bert"`},
		{"bad from", "GET", "?from=yesterday", 400, `parameter "from": "yesterday" is not an RFC 3339 time`},
		{"bad to", "GET", "?to=2025-01-01", 400, `parameter "to": "2025-01-01" is not an RFC 3339 time`},
		{"bad by", "GET", "?by=team", 400, `parameter "by": unknown grouping "team": want one of namespace, workload, node, model`},
		{"from after to", "GET", "?from=2025-01-01T06:00:00Z&to=2025-01-01T05:00:00Z", 400, `parameter "from": 2025-01-01T06:00:00Z is not before to`},
		{"unknown parameter", "GET", "?form=2025-01-01T06:00:00Z", 400, `unknown parameter "form"`},
		{"repeated parameter", "GET", "?by=node&by=model", 400, `parameter "by" given 2 times`},
		{"post", "POST", "", 405, "method POST not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, ReportPath+tc.query, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("HTTP %d %q, want %d containing %q", rec.Code, msg.Truncate(rec.Body.String(), 300), tc.code, tc.want)
			}
		})
	}

	// The default range is the 24 h before now, clipped to the newest
	// snapshot; the report embeds its usage.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", ReportPath, nil))
	var r Report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", rec.Header().Get("Content-Type"))
	}
	if want := t0.Add(window - 24*time.Hour); !r.From.Equal(want) || !r.To.Equal(t0.Add(window)) {
		t.Errorf("default range %v to %v, want %v to %v", r.From, r.To, want, t0.Add(window))
	}
	if len(r.Usage.Entries) != 8 || len(r.Usage.Nodes) != 3 || len(r.Usage.GPUs) != 3 {
		t.Errorf("usage has %d entries, %d nodes, %d GPU lists; want 8, 3, 3", len(r.Usage.Entries), len(r.Usage.Nodes), len(r.Usage.GPUs))
	}
}

// TestReportClient reads the handler's report over HTTP and rebuilds the
// same report from its usage.
func TestReportClient(t *testing.T) {
	l := newTestLedger(t, WithClock(func() time.Time { return t0.Add(window) }))
	feed(t, l, 0, window)
	mux := http.NewServeMux()
	mux.Handle("/proxy"+ReportPath, l.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, err := NewReportClient(srv.URL+"/proxy/", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Usage(t.Context(), t0, t0.Add(window))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := l.Usage(t0, t0.Add(window))
	if err != nil {
		t.Fatal(err)
	}
	got, err := BuildReport(u, ReportOptions{By: ByNode, Prices: testPrices(t)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := BuildReport(direct, ReportOptions{By: ByNode, Prices: testPrices(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != len(want.Rows) || !near(got.TotalCost, want.TotalCost) || len(got.Recommendations) != len(want.Recommendations) {
		t.Errorf("report over HTTP: %d rows, total %v, %d recommendations; direct: %d, %v, %d",
			len(got.Rows), got.TotalCost, len(got.Recommendations), len(want.Rows), want.TotalCost, len(want.Recommendations))
	}

	bad, err := NewReportClient(srv.URL+"/nothing-here", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Usage(t.Context(), t0, t0.Add(window)); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("error %v, want one naming HTTP 404", err)
	}
	for _, u := range []string{"localhost:6443", "ftp://x", "http://x/?a=b", "https://"} {
		if _, err := NewReportClient(u, nil); err == nil {
			t.Errorf("NewReportClient(%q): no error", u)
		}
	}
}
