package cost

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/msg"
)

// PromReader reads Usage from a Prometheus server that scrapes the
// adapter's cost counters (with honor_labels: true, so that the namespace
// and pod labels are the accounted pod's). Each figure is the increase()
// of a counter over the range, evaluated at its end: Prometheus handles the
// counter resets of adapter restarts, and series of several adapter
// replicas are deduplicated with max by pod before they are summed.
type PromReader struct {
	endpoint string
	server   string
	client   *http.Client
}

var _ UsageReader = &PromReader{}

// NewPromReader returns a reader of the Prometheus server at server, sending
// queries with client (nil: http.DefaultClient).
func NewPromReader(server string, client *http.Client) (*PromReader, error) {
	u, err := parseServerURL(server)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	e := *u
	e.Path = strings.TrimSuffix(e.Path, "/") + "/api/v1/query"
	e.RawPath = ""
	return &PromReader{endpoint: e.String(), server: redact(u), client: client}, nil
}

// The labels of the cost counters a Usage is keyed by.
const (
	promKeyLabels      = "namespace, workload_kind, workload, node, model, capacity_type"
	promWorkloadLabels = "namespace, workload_kind, workload"
	promNodeLabels     = "node, model, capacity_type"
)

// podIncrease is the increase of a per-pod counter over rng, per Key.
func podIncrease(metric, rng string) string {
	return fmt.Sprintf("sum by (%s) (max by (%s, pod) (increase(%s[%s])))", promKeyLabels, promKeyLabels, metric, rng)
}

// workloadRate is the 5m rate of a per-pod counter per workload.
func workloadRate(metric string) string {
	return fmt.Sprintf("sum by (%s) (max by (%s, pod) (rate(%s[5m])))", promWorkloadLabels, promKeyLabels, metric)
}

// peakQuery is the 95th percentile over [rng] at 1m steps of the
// workloads' GPU use per replica, as the Ledger computes it per minute.
func peakQuery(rng string) string {
	return fmt.Sprintf("quantile_over_time(0.95, ((%s / %s) * (%s / %s))[%s:1m])",
		workloadRate(MetricUsedSeconds), workloadRate(MetricAllocatedObservedSeconds),
		workloadRate(MetricAllocatedSeconds), workloadRate(MetricPodSeconds), rng)
}

// minPeakRange is the shortest range for which peaks are queried.
const minPeakRange = 10 * time.Minute

// Usage queries the accounted GPU time of [from, to).
func (r *PromReader) Usage(ctx context.Context, from, to time.Time) (Usage, error) {
	secs := int64(to.Sub(from).Round(time.Second) / time.Second)
	if secs < 1 {
		return Usage{}, fmt.Errorf("range %s to %s: must be at least one second", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	rng := strconv.FormatInt(secs, 10) + "s"
	u := Usage{From: from, To: to, Entries: []Entry{}, Nodes: []NodeIdle{},
		Notes: []string{"from Prometheus: increase() extrapolates to the range's ends, so figures are estimates to within a scrape interval"}}

	acc := map[Key]*Accum{}
	for _, c := range []struct {
		metric string
		field  func(*Accum) *float64
	}{
		{MetricAllocatedSeconds, func(a *Accum) *float64 { return &a.AllocatedGPUSeconds }},
		{MetricUsedSeconds, func(a *Accum) *float64 { return &a.UsedGPUSeconds }},
		{MetricAllocatedObservedSeconds, func(a *Accum) *float64 { return &a.AllocatedObservedGPUSeconds }},
		{MetricPodSeconds, func(a *Accum) *float64 { return &a.PodSeconds }},
		{MetricRequests, func(a *Accum) *float64 { return &a.Requests }},
		{MetricRequestsObservedSeconds, func(a *Accum) *float64 { return &a.RequestsObservedSeconds }},
	} {
		vec, err := r.query(ctx, podIncrease(c.metric, rng), to)
		if err != nil {
			return Usage{}, err
		}
		for _, s := range vec {
			k := Key{
				Namespace: s.labels["namespace"], WorkloadKind: s.labels["workload_kind"], Workload: s.labels["workload"],
				Node: s.labels["node"], Model: s.labels["model"], Spot: s.labels["capacity_type"] == CapacitySpot,
			}
			if acc[k] == nil {
				acc[k] = &Accum{}
			}
			*c.field(acc[k]) += s.value
		}
	}
	for k, a := range acc {
		u.Entries = append(u.Entries, Entry{Key: k, Accum: *a})
	}

	vec, err := r.query(ctx, fmt.Sprintf("max by (%s) (increase(%s[%s]))", promNodeLabels, MetricUnallocatedSeconds, rng), to)
	if err != nil {
		return Usage{}, err
	}
	for _, s := range vec {
		u.Nodes = append(u.Nodes, NodeIdle{NodeKey: nodeKeyOf(s.labels), UnallocatedGPUSeconds: s.value})
	}

	vec, err = r.query(ctx, fmt.Sprintf("max(increase(%s[%s]))", MetricObservedSeconds, rng), to)
	if err != nil {
		return Usage{}, err
	}
	for _, s := range vec {
		u.ObservedSeconds = min(s.value, to.Sub(from).Seconds())
	}

	if to.Sub(from) >= minPeakRange {
		vec, err = r.query(ctx, peakQuery(rng), to)
		if err != nil {
			return Usage{}, err
		}
		for _, s := range vec {
			u.Peaks = append(u.Peaks, UsePeak{
				WorkloadRef:           WorkloadRef{Namespace: s.labels["namespace"], Kind: s.labels["workload_kind"], Name: s.labels["workload"]},
				P95UsedGPUsPerReplica: s.value,
			})
		}
	}

	vec, err = r.query(ctx, fmt.Sprintf("max by (%s, gpu) (%s)", promNodeLabels, MetricAllocatedRatio), to)
	if err != nil {
		return Usage{}, err
	}
	u.GPUs = gpusFromRatios(vec)
	if len(u.GPUs) > 0 {
		u.GPUsAt = to
	}
	sortUsage(&u)
	return u, nil
}

func nodeKeyOf(labels map[string]string) NodeKey {
	return NodeKey{Node: labels["node"], Model: labels["model"], Spot: labels["capacity_type"] == CapacitySpot}
}

// gpusFromRatios turns per-GPU allocation ratios into NodeAllocations.
func gpusFromRatios(vec []promSample) []NodeAllocation {
	byNode := map[NodeKey]map[int]int64{}
	for _, s := range vec {
		i, err := strconv.Atoi(s.labels["gpu"])
		if err != nil || i < 0 || i >= maxGPUsPerNode {
			continue
		}
		k := nodeKeyOf(s.labels)
		if byNode[k] == nil {
			byNode[k] = map[int]int64{}
		}
		byNode[k][i] = int64(math.Round(min(max(s.value, 0), 1) * 1000))
	}
	var out []NodeAllocation
	for k, gpus := range byNode {
		n := 0
		for i := range gpus {
			n = max(n, i+1)
		}
		per := make([]int64, n)
		for i, m := range gpus {
			per[i] = m
		}
		out = append(out, NodeAllocation{NodeKey: k, PerGPUAllocatedMilli: per})
	}
	return out
}

// promSample is one element of an instant vector.
type promSample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query at t. Errors name the server and the query.
func (r *PromReader) query(ctx context.Context, q string, t time.Time) ([]promSample, error) {
	form := url.Values{
		"query": {q},
		"time":  {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	body, status, err := do(r.client, req)
	if err == nil {
		var vec []promSample
		if vec, err = decodeVector(status, body); err == nil {
			return vec, nil
		}
	}
	return nil, fmt.Errorf("querying Prometheus at %s: %w (query: %s)", r.server, err, msg.Truncate(q, 200))
}

// decodeVector parses an instant query's response: a successful vector of
// well-formed samples, or an error. NaN and infinite values are dropped.
func decodeVector(status int, body []byte) ([]promSample, error) {
	var resp struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []json.RawMessage `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		if status/100 != 2 {
			return nil, fmt.Errorf("HTTP %d: %s", status, msg.Truncate(string(body), 200))
		}
		return nil, fmt.Errorf("decoding the response: %w", err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("HTTP %d: %s: %s", status, resp.ErrorType, resp.Error)
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("HTTP %d with a successful response body", status)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want \"vector\"", resp.Data.ResultType)
	}
	var out []promSample
	for i, s := range resp.Data.Result {
		if len(s.Value) != 2 {
			return nil, fmt.Errorf("sample %d: value has %d elements, want [time, \"value\"]", i, len(s.Value))
		}
		var text string
		if err := json.Unmarshal(s.Value[1], &text); err != nil {
			return nil, fmt.Errorf("sample %d: value %s is not a quoted number", i, msg.Truncate(string(s.Value[1]), 100))
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("sample %d: value %q is not a number", i, msg.Truncate(text, 100))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, promSample{labels: s.Metric, value: v})
	}
	return out, nil
}
