package costcmd

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gpufleet/gpufleet/pkg/cost"
)

var costT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCostOptionsValidateReportsEveryError(t *testing.T) {
	o := newCostOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	dir := t.TempDir()
	prices := filepath.Join(dir, "prices.yaml")
	if err := os.WriteFile(prices, []byte("models:\n  T4: {onDemand: 0.35}\n  K80: {onDemand: 1, spot: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.By, o.Format, o.AdapterURL, o.From, o.To, o.Timeout = "team", "pdf", "localhost:443", "yesterday", "today", 0
	o.Prices, o.Output, o.MinUtilization, o.MinRequestsPerReplica = prices, filepath.Join(dir, "missing", "r.html"), 2, -1
	o.Kubeconfig = filepath.Join(dir, "nope")
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`--by: unknown grouping "team"`, `--format: unknown format "pdf"`, `--adapter-url: URL "localhost:443"`,
		"--from=yesterday: not an RFC 3339 time", "--to=today: not an RFC 3339 time", "--timeout=0s",
		"--min-utilization=2", "--min-requests-per-replica=-1", "--kubeconfig:",
		"--prices: " + prices + ": invalid price table:\nline 2: model T4: spot price missing",
		`line 3: unknown GPU model "K80"`, "--output=" + o.Output + ": its directory does not exist",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not mention %q", err, want)
		}
	}

	o = newCostOptions()
	o.PrometheusURL, o.Last = "prometheus:9090", -time.Hour
	err = o.Validate()
	for _, want := range []string{`--prometheus-url: URL "prometheus:9090"`, "--last=-1h0m0s: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	o = newCostOptions()
	o.From, o.To = "2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--from=2025-01-02T00:00:00Z is not before --to=2025-01-01T00:00:00Z") {
		t.Errorf("error %v for from after to", err)
	}
}

func TestCostRangeFromLast(t *testing.T) {
	o := newCostOptions()
	o.now = func() time.Time { return costT0 }
	o.Last = 6 * time.Hour
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if !o.from.Equal(costT0.Add(-6*time.Hour)) || !o.to.Equal(costT0) {
		t.Errorf("range %v to %v", o.from, o.to)
	}
	o.From = "2024-12-31T23:00:00Z"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if !o.from.Equal(costT0.Add(-time.Hour)) {
		t.Errorf("--from did not override --last: %v", o.from)
	}
}

// testLedger accounts one Deployment of two 1-GPU replicas at 20 % and a
// 300-milli pod on a 4-GPU node for one hour.
func testLedger(t *testing.T) *cost.Ledger {
	t.Helper()
	l, err := cost.NewLedger(cost.WithPeriod(10*time.Second), cost.WithClock(func() time.Time { return costT0.Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	pods := []cost.PodUsage{
		{Namespace: "ml", Name: "bert-1", UID: "1", WorkloadKind: cost.KindDeployment, Workload: "bert", Node: "gpu-1", Model: "V100M16",
			Start: costT0, AllocatedGPUs: 1, GPUIndices: []int{0}, UsedGPUs: 0.2, UsedKnown: true},
		{Namespace: "ml", Name: "bert-2", UID: "2", WorkloadKind: cost.KindDeployment, Workload: "bert", Node: "gpu-1", Model: "V100M16",
			Start: costT0, AllocatedGPUs: 1, GPUIndices: []int{1}, UsedGPUs: 0.2, UsedKnown: true},
		{Namespace: "<dev>", Name: "nb", UID: "3", Node: "gpu-1", Model: "V100M16",
			Start: costT0, AllocatedGPUs: 0.3, GPUIndices: []int{2}, UsedGPUs: 0.3, UsedKnown: true},
	}
	for at := time.Duration(0); at <= time.Hour; at += 10 * time.Second {
		s := cost.Snapshot{Time: costT0.Add(at), Pods: pods, Nodes: []cost.NodeGPUs{{Node: "gpu-1", Model: "V100M16", GPUs: 4}}}
		if err := l.Observe(s); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func writePrices(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(path, []byte("models:\n  V100M16: {onDemand: 2.48, spot: 0.74}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCost(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestCostFromAdapter(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(cost.ReportPath, testLedger(t).Handler())
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	rng := []string{"--from", "2025-01-01T00:00:00Z", "--to", "2025-01-01T01:00:00Z"}

	out, err := runCost(t, append(rng, "--adapter-url", srv.URL, "--insecure-skip-tls-verify", "--prices", writePrices(t), "--format", "csv")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := `namespace,gpu_hours_allocated,gpu_hours_used,efficiency,cost,idle_gpu_hours,idle_cost
ml,2.0000,0.4000,0.2000,4.96,0.0000,0.00
<dev>,0.3000,0.3000,1.0000,0.74,0.0000,0.00
(idle),0.0000,0.0000,,0.00,1.7000,4.22
(total),2.3000,0.7000,0.3043,5.70,1.7000,4.22
`
	if out != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", out, want)
	}

	// Without --insecure-skip-tls-verify the self-signed certificate is
	// refused, and the error names the adapter.
	_, err = runCost(t, append(rng, "--adapter-url", srv.URL)...)
	if err == nil || !strings.Contains(err.Error(), "reading the cost report from "+srv.URL+cost.ReportPath) {
		t.Errorf("error %v: want one naming the adapter's report URL", err)
	}

	// Table by workload, with the recommendations.
	out, err = runCost(t, append(rng, "--adapter-url", srv.URL, "--insecure-skip-tls-verify", "--by", "workload", "--prices", writePrices(t))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"WORKLOAD", "ml/Deployment/bert", "20%", "a 300-milli share (gpufleet.io/gpu-milli: 300)"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}

	// HTML into a file.
	page := filepath.Join(t.TempDir(), "cost.html")
	if out, err := runCost(t, append(rng, "--adapter-url", srv.URL, "--insecure-skip-tls-verify", "--format", "html", "-o", page)...); err != nil || out != "" {
		t.Fatalf("%v, output %q", err, out)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(html); !strings.Contains(s, "<svg") || strings.Contains(s, "<script") || strings.Contains(s, "<dev>") || !strings.Contains(s, "&lt;dev&gt;") {
		t.Errorf("HTML page: svg, no script, escaped namespace expected")
	}
}

// TestCostKubeconfig: --kubeconfig supplies the CA and the bearer token.
func TestCostKubeconfig(t *testing.T) {
	h := testLedger(t).Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "s3cret"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	args := []string{"--adapter-url", srv.URL, "--from", "2025-01-01T00:00:00Z", "--to", "2025-01-01T01:00:00Z", "--format", "json"}
	out, err := runCost(t, append(args, "--kubeconfig", kubeconfig)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `"group": "ml"`) || !strings.Contains(out, "no price table (--prices): costs are left out") {
		t.Errorf("JSON report:\n%s", truncateText(out, 2000))
	}
	if _, err := runCost(t, append(args, "--insecure-skip-tls-verify")...); err == nil || !strings.Contains(err.Error(), "HTTP 401: Unauthorized") {
		t.Errorf("without credentials: %v", err)
	}
}

func TestCostFromPrometheus(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		q := r.FormValue("query")
		queries = append(queries, q)
		result := "[]"
		switch {
		case strings.HasPrefix(q, "quantile_over_time"):
		case strings.Contains(q, cost.MetricAllocatedSeconds+"["), strings.Contains(q, cost.MetricAllocatedObservedSeconds+"["), strings.Contains(q, cost.MetricPodSeconds+"["):
			result = `[{"metric":{"namespace":"ml","workload_kind":"Job","workload":"train","node":"gpu-1","model":"V100M16","capacity_type":"on-demand"},"value":[1,"36000"]}]`
		case strings.Contains(q, cost.MetricUsedSeconds+"["):
			result = `[{"metric":{"namespace":"ml","workload_kind":"Job","workload":"train","node":"gpu-1","model":"V100M16","capacity_type":"on-demand"},"value":[1,"32400"]}]`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":` + result + `}}`))
	}))
	defer srv.Close()
	out, err := runCost(t, "--prometheus-url", srv.URL, "--to", "2025-01-08T00:00:00Z", "--last", "168h", "--by", "model", "--prices", writePrices(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{"GPU cost by model, 2025-01-01T00:00:00Z to 2025-01-08T00:00:00Z (168.0 h", "V100M16", "10.00", "90%", "24.80",
		"Job ml/train on on-demand V100M16 (10.0 GPU-h, $24.80) -> spot would cost $7.40"} {
		if !strings.Contains(out, w) {
			t.Errorf("report lacks %q:\n%s", w, out)
		}
	}
	if len(queries) == 0 || !strings.Contains(queries[0], "[604800s]") {
		t.Errorf("queries %q: want a 7-day range", queries)
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
