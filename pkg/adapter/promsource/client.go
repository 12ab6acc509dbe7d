package promsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/internal/msg"
)

const (
	// maxResponseBytes bounds a query's response body.
	maxResponseBytes = 64 << 20
	// maxQueryInError is the longest query an error message quotes whole.
	maxQueryInError = 200
	// maxBodyInError is the most of an unexpected body an error quotes.
	maxBodyInError = 200
	// maxUnixSeconds bounds a sample's time (year 5138), far inside int64
	// milliseconds.
	maxUnixSeconds = 1e11
)

// apiResponse is the envelope of the Prometheus HTTP API.
type apiResponse struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// query runs the instant query q and returns its vector. Its errors name
// the server and the query.
func (s *Source) query(ctx context.Context, q string) ([]sample, error) {
	logger := klog.FromContext(ctx)
	logger.V(5).Info("Querying Prometheus", "server", s.server, "query", q)
	qctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	vec, warnings, err := s.post(qctx, q)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the query timeout %v: %w", s.cfg.timeout, err)
		}
		return nil, fmt.Errorf("querying Prometheus at %s: %w (query: %s)", s.server, err, msg.Truncate(q, maxQueryInError))
	}
	if len(warnings) > 0 {
		logger.V(2).Info("Prometheus query warnings", "server", s.server, "query", msg.Truncate(q, maxQueryInError), "warnings", warnings)
	}
	logger.V(5).Info("Prometheus answered", "server", s.server, "samples", len(vec))
	return vec, nil
}

// post sends q as a form, so that long queries fit, with the query timeout
// for the server's evaluation.
func (s *Source) post(ctx context.Context, q string) ([]sample, []string, error) {
	form := url.Values{
		"query":   {q},
		"timeout": {strconv.FormatFloat(s.cfg.timeout.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the response (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(body) > maxResponseBytes {
		return nil, nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return decode(resp.StatusCode, body)
}

// vectorSample is one element of a vector result.
type vectorSample struct {
	Metric map[string]string `json:"metric"`
	// Value is [unix time in seconds, "value"].
	Value []json.RawMessage `json:"value"`
	// Histogram is set instead of Value for native histograms.
	Histogram json.RawMessage `json:"histogram"`
}

// sample is a decoded vectorSample.
type sample struct {
	labels map[string]string
	value  float64
	time   time.Time
	// histogram marks a native histogram, which has no value here.
	histogram bool
}

// decode parses an instant query's response. Anything but a successful
// vector result of well-formed samples is an error.
func decode(status int, body []byte) ([]sample, []string, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		if status/100 != 2 {
			return nil, nil, fmt.Errorf("HTTP %d: %s", status, msg.Truncate(string(body), maxBodyInError))
		}
		return nil, nil, fmt.Errorf("decoding the response: %w", err)
	}
	if r.Status != "success" {
		if r.Error != "" {
			return nil, nil, fmt.Errorf("HTTP %d: %s: %s", status, r.ErrorType, r.Error)
		}
		return nil, nil, fmt.Errorf("HTTP %d: response status %q", status, r.Status)
	}
	if status/100 != 2 {
		return nil, nil, fmt.Errorf("HTTP %d with a successful response body", status)
	}
	if r.Data.ResultType != "vector" {
		return nil, nil, fmt.Errorf("result type %q, want \"vector\"", r.Data.ResultType)
	}
	var vec []*vectorSample
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return nil, nil, fmt.Errorf("decoding the vector result: %w", err)
	}
	out := make([]sample, len(vec))
	for i, vs := range vec {
		s, err := vs.parse()
		if err != nil {
			return nil, nil, fmt.Errorf("decoding the vector result: sample %d: %w", i, err)
		}
		out[i] = s
	}
	return out, r.Warnings, nil
}

// parse checks and converts one element of a vector result.
func (vs *vectorSample) parse() (sample, error) {
	if vs == nil {
		return sample{}, errors.New("null")
	}
	if len(vs.Histogram) > 0 && len(vs.Value) == 0 {
		return sample{labels: vs.Metric, histogram: true}, nil
	}
	if len(vs.Value) != 2 {
		return sample{}, fmt.Errorf("value has %d elements, want [time, \"value\"]", len(vs.Value))
	}
	secs, err := strconv.ParseFloat(string(vs.Value[0]), 64)
	if err != nil || math.IsNaN(secs) || math.Abs(secs) > maxUnixSeconds {
		return sample{}, fmt.Errorf("time %s is not a Unix time in seconds", msg.Truncate(string(vs.Value[0]), maxBodyInError))
	}
	var text string
	if err := json.Unmarshal(vs.Value[1], &text); err != nil {
		return sample{}, fmt.Errorf("value %s is not a quoted number", msg.Truncate(string(vs.Value[1]), maxBodyInError))
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return sample{}, fmt.Errorf("value %q is not a number", msg.Truncate(text, maxBodyInError))
	}
	return sample{
		labels: vs.Metric,
		value:  v,
		time:   time.UnixMilli(int64(math.Round(secs * 1000))),
	}, nil
}
