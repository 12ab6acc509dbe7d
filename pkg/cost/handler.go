package cost

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ReportPath is where the metrics adapter serves the report.
const ReportPath = "/cost/report"

// DefaultReportRange is the range of a report request without from.
const DefaultReportRange = 24 * time.Hour

// Handler serves GET ReportPath?from=RFC3339&to=RFC3339&by=GROUPING: the
// Report (JSON) of the range, to defaulting to now, from to 24h before to
// and by to namespace. The report embeds its Usage, so a client can regroup
// and reprice it. A bad parameter is a 400 whose text names it.
func (l *Ledger) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, fmt.Sprintf("method %s not allowed: use GET", req.Method), http.StatusMethodNotAllowed)
			return
		}
		from, to, by, err := l.reportParams(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r, err := l.Report(from, to, by)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := json.Marshal(r)
		if err != nil {
			http.Error(w, "encoding the report: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
}

func (l *Ledger) reportParams(req *http.Request) (from, to time.Time, by GroupBy, err error) {
	q := req.URL.Query()
	for name := range q {
		switch name {
		case "from", "to", "by":
			if len(q[name]) > 1 {
				return from, to, by, fmt.Errorf("parameter %q given %d times: give it once", name, len(q[name]))
			}
		default:
			return from, to, by, fmt.Errorf("unknown parameter %q: the report takes from, to and by", name)
		}
	}
	parse := func(name string, def time.Time) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("parameter %q: %q is not an RFC 3339 time such as 2006-01-02T15:04:05Z", name, v)
		}
		return t, nil
	}
	if to, err = parse("to", l.cfg.clock()); err != nil {
		return
	}
	if from, err = parse("from", to.Add(-DefaultReportRange)); err != nil {
		return
	}
	if !from.Before(to) {
		return from, to, by, fmt.Errorf("parameter \"from\": %s is not before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	by = ByNamespace
	if v := q.Get("by"); v != "" {
		if by, err = ParseGroupBy(v); err != nil {
			return from, to, by, fmt.Errorf("parameter \"by\": %w", err)
		}
	}
	return from, to, by, nil
}
