package cost

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakePrometheus answers instant queries with canned vectors, chosen by the
// counter a query names.
type fakePrometheus struct {
	t       *testing.T
	at      string
	queries []string
	// answers by metric name: the JSON of the result array.
	answers map[string]string
	// status and body, when set, answer every query.
	status int
	body   string
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prom/api/v1/query" || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.PostForm.Get("query")
	f.queries = append(f.queries, q)
	if got := r.PostForm.Get("time"); got != f.at {
		f.t.Errorf("query at time %q, want %q", got, f.at)
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprint(w, f.body)
		return
	}
	// The peak query names several counters: look for it first.
	name := ""
	if strings.HasPrefix(q, "quantile_over_time") {
		name = "peak"
	} else {
		for _, m := range []string{MetricAllocatedObservedSeconds, MetricAllocatedSeconds, MetricUsedSeconds, MetricPodSeconds,
			MetricRequestsObservedSeconds, MetricRequests, MetricUnallocatedSeconds, MetricObservedSeconds, MetricAllocatedRatio} {
			if strings.Contains(q, m+"[") || strings.Contains(q, m+")") {
				name = m
				break
			}
		}
	}
	result, ok := f.answers[name]
	if !ok {
		result = "[]"
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, result)
}

func vec(samples ...string) string { return "[" + strings.Join(samples, ",") + "]" }

func sample(labels string, v string) string {
	return fmt.Sprintf(`{"metric":{%s},"value":[1735711200,%q]}`, labels, v)
}

const (
	bertLabels  = `"namespace":"ml","workload_kind":"Deployment","workload":"bert","node":"node-a","model":"V100M16","capacity_type":"on-demand"`
	trainLabels = `"namespace":"batch","workload_kind":"Job","workload":"train","node":"node-a","model":"V100M16","capacity_type":"on-demand"`
)

func TestPromReader(t *testing.T) {
	to := t0.Add(window)
	f := &fakePrometheus{t: t, at: "1735711200.000", answers: map[string]string{
		MetricAllocatedSeconds:         vec(sample(bertLabels, "43200"), sample(trainLabels, "10800")),
		MetricUsedSeconds:              vec(sample(bertLabels, "9504"), sample(trainLabels, "9720")),
		MetricAllocatedObservedSeconds: vec(sample(bertLabels, "43200"), sample(trainLabels, "10800")),
		MetricPodSeconds:               vec(sample(bertLabels, "43200"), sample(trainLabels, "10800")),
		MetricRequests:                 vec(sample(bertLabels, "181440"), sample(trainLabels, "NaN")),
		MetricRequestsObservedSeconds:  vec(sample(bertLabels, "43200")),
		MetricUnallocatedSeconds:       vec(sample(`"node":"node-a","model":"V100M16","capacity_type":"on-demand"`, "10800")),
		MetricObservedSeconds:          vec(sample(``, "21600")),
		"peak":                         vec(sample(`"namespace":"ml","workload_kind":"Deployment","workload":"bert"`, "0.22")),
		MetricAllocatedRatio: vec(
			sample(`"node":"node-c","model":"V100M16","capacity_type":"spot","gpu":"0"`, "0.5"),
			sample(`"node":"node-c","model":"V100M16","capacity_type":"spot","gpu":"1"`, "0.4"),
			sample(`"node":"node-c","model":"V100M16","capacity_type":"spot","gpu":"2"`, "0.3"),
			sample(`"node":"node-c","model":"V100M16","capacity_type":"spot","gpu":"3"`, "0")),
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	pr, err := NewPromReader(srv.URL+"/prom", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	u, err := pr.Usage(t.Context(), t0, to)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.queries[0], "sum by (namespace, workload_kind, workload, node, model, capacity_type) (max by (namespace, workload_kind, workload, node, model, capacity_type, pod) (increase(gpufleet_cost_gpu_allocated_seconds_total[21600s])))"; got != want {
		t.Errorf("first query\n %s\nwant\n %s", got, want)
	}
	if len(f.queries) != 10 {
		t.Errorf("%d queries, want 10: %q", len(f.queries), f.queries)
	}
	wantGPUs := []NodeAllocation{{NodeKey: NodeKey{Node: "node-c", Model: "V100M16", Spot: true}, PerGPUAllocatedMilli: []int64{500, 400, 300, 0}}}
	if diff := cmp.Diff(wantGPUs, u.GPUs); diff != "" {
		t.Errorf("GPUs (-want +got):\n%s", diff)
	}

	r, err := BuildReport(u, ReportOptions{By: ByWorkload, Prices: testPrices(t)})
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, r, []wantRow{
		{"ml/Deployment/bert", 12, 2.64, 0.22, 12 * 2.48, 0, 0},
		{"batch/Job/train", 3, 2.7, 0.9, 3 * 2.48, 0, 0},
		{"(idle)", 0, 0, -1, 0, 3, 3 * 2.48},
		{"(total)", 15, 5.34, 5.34 / 15, 15 * 2.48, 3, 3 * 2.48},
	})
	if r.ObservedSeconds != 21600 || r.WindowSeconds != 21600 {
		t.Errorf("observed %v of %v s", r.ObservedSeconds, r.WindowSeconds)
	}
	var kinds []string
	for _, rec := range r.Recommendations {
		kinds = append(kinds, string(rec.Kind)+" "+rec.Target)
	}
	want := []string{"spot batch/Job/train", "fractional-gpu ml/Deployment/bert", "fewer-replicas ml/Deployment/bert", "consolidate node/node-c"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("recommendations (-want +got):\n%s", diff)
	}
}

func TestPromReaderErrors(t *testing.T) {
	to := t0.Add(window)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"query error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, 400, "HTTP 400: bad_data: parse error"},
		{"not JSON", `<html>oops</html>`, 502, "HTTP 502: <html>oops</html>"},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 200, `result type "matrix", want "vector"`},
		{"bad value", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, 200, `sample 0: value "x" is not a number`},
		{"short value", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}`, 200, "sample 0: value has 1 elements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakePrometheus{t: t, at: "1735711200.000", status: tc.status, body: tc.body}
			srv := httptest.NewServer(f)
			defer srv.Close()
			pr, err := NewPromReader(srv.URL+"/prom/", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = pr.Usage(t.Context(), t0, to)
			if err == nil || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "querying Prometheus at "+srv.URL+"/prom") ||
				!strings.Contains(err.Error(), "(query: sum by (namespace") {
				t.Errorf("error %v: want one naming the server, the query and %q", err, tc.want)
			}
		})
	}
	pr, err := NewPromReader("http://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Usage(t.Context(), t0, t0.Add(time.Millisecond)); err == nil || !strings.Contains(err.Error(), "at least one second") {
		t.Errorf("error %v for a sub-second range", err)
	}
}
