package cost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/msg"
)

// UsageReader reads the GPU time accounted over [from, to) from somewhere:
// the adapter (ReportClient) or Prometheus (PromReader).
type UsageReader interface {
	Usage(ctx context.Context, from, to time.Time) (Usage, error)
}

// maxResponseBytes bounds a response body.
const maxResponseBytes = 64 << 20

// ReportClient reads Usage from the metrics adapter's report endpoint
// (ReportPath under a base URL, which may carry a path, e.g. a
// kube-apiserver service proxy).
type ReportClient struct {
	base   *url.URL
	client *http.Client
}

var _ UsageReader = &ReportClient{}

// NewReportClient returns a client of the adapter at base, sending requests
// with client (nil: http.DefaultClient).
func NewReportClient(base string, client *http.Client) (*ReportClient, error) {
	u, err := parseServerURL(base)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &ReportClient{base: u, client: client}, nil
}

// parseServerURL checks an http(s) base URL.
func parseServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: want http:// or https:// and a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q: want no query or fragment", s)
	}
	return u, nil
}

// Usage fetches the report of [from, to) and returns its Usage.
func (c *ReportClient) Usage(ctx context.Context, from, to time.Time) (Usage, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + ReportPath
	u.RawPath = ""
	u.RawQuery = url.Values{
		"from": {from.UTC().Format(time.RFC3339)},
		"to":   {to.UTC().Format(time.RFC3339)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Usage{}, err
	}
	req.Header.Set("Accept", "application/json")
	body, status, err := do(c.client, req)
	if err != nil {
		return Usage{}, fmt.Errorf("reading the cost report from %s: %w", redact(&u), err)
	}
	if status != http.StatusOK {
		return Usage{}, fmt.Errorf("reading the cost report from %s: HTTP %d: %s", redact(&u), status, msg.Truncate(strings.TrimSpace(string(body)), 300))
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return Usage{}, fmt.Errorf("decoding the cost report from %s: %w", redact(&u), err)
	}
	if r.Usage.Entries == nil && r.Usage.Nodes == nil && r.Usage.To.IsZero() {
		return Usage{}, fmt.Errorf("the cost report from %s carries no usage: is it a gpufleet metrics adapter?", redact(&u))
	}
	return r.Usage, nil
}

// do sends req and reads a bounded body.
func do(client *http.Client, req *http.Request) (body []byte, status int, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading the response (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(body) > maxResponseBytes {
		return nil, resp.StatusCode, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return body, resp.StatusCode, nil
}

// redact drops credentials from a URL for messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}
