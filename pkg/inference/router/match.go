package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// request is what routes look at.
type request struct {
	model, version string
	header         http.Header
	// body is the inference request, nil for metadata and readiness.
	body []byte
	// params are body's top-level parameters, parsed on first use.
	params    map[string]string
	paramsErr error
	parsed    bool
}

// parameters returns the request's top-level parameters as strings.
func (r *request) parameters() (map[string]string, error) {
	if !r.parsed {
		r.parsed = true
		if r.body != nil {
			r.params, r.paramsErr = parseParameters(r.body)
		}
	}
	return r.params, r.paramsErr
}

// parseParameters reads the "parameters" object of a v2 inference request:
// string values as they are, other values as their compact JSON text. It
// checks only that the body is one JSON object; the model server checks
// the rest.
func parseParameters(body []byte) (map[string]string, error) {
	var top struct {
		Parameters map[string]json.RawMessage `json:"parameters"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("malformed JSON request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed JSON request: data after the request object")
	}
	if len(top.Parameters) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(top.Parameters))
	for k, raw := range top.Parameters {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = s
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("parameter %q: %w", k, err)
		}
		out[k] = buf.String()
	}
	return out, nil
}

// matches says whether r satisfies m. Inference requests are matched on
// everything; other requests (metadata, readiness) on the model and
// version only, since they carry no parameters and a client asking for a
// model's metadata wants the model whatever the route's conditions.
func (m *Match) matches(r *request) (bool, error) {
	if m.Model != "" && m.Model != r.model {
		return false, nil
	}
	if m.Version != "" && m.Version != r.version {
		return false, nil
	}
	if r.body == nil {
		return true, nil
	}
	for k, v := range m.Headers {
		if r.header.Get(k) != v {
			return false, nil
		}
	}
	if len(m.Parameters) == 0 {
		return true, nil
	}
	params, err := r.parameters()
	if err != nil {
		return false, err
	}
	for k, v := range m.Parameters {
		if got, ok := params[k]; !ok || got != v {
			return false, nil
		}
	}
	return true, nil
}

// split is a route's backends with their current weights.
type split struct {
	targets []*target
	// weights are percents, one per target, replaced whole by a Rollout.
	weights atomic.Pointer[[]int32]
}

// target is one share of a route: a backend's pool and the version asked
// of it.
type target struct {
	backend string
	pool    *Pool
	version string
	// requests counts the inference requests the split gave it.
	requests prometheus.Counter
}

// pick chooses a target by weight; n is uniform in [0, 100).
func (s *split) pick(n int32) *target {
	w := *s.weights.Load()
	for i, wi := range w {
		if n < wi {
			return s.targets[i]
		}
		n -= wi
	}
	// Only reached if every weight is 0, which validation forbids.
	return s.targets[len(s.targets)-1]
}

func (s *split) pickRandom() *target { return s.pick(rand.Int32N(100)) }

// setWeights replaces the weights (same order as targets).
func (s *split) setWeights(w []int32) {
	w = append([]int32(nil), w...)
	s.weights.Store(&w)
}

// parsePath splits /v2/models/{name}[/versions/{v}][/rest]; rest is
// "infer", "ready" or "" (metadata).
func parsePath(path string) (model, version, rest string, ok bool) {
	p, found := strings.CutPrefix(path, "/v2/models/")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(p, "/")
	if parts[0] == "" {
		return "", "", "", false
	}
	model, parts = parts[0], parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		if parts[1] == "" {
			return "", "", "", false
		}
		version, parts = parts[1], parts[2:]
	}
	switch {
	case len(parts) == 0:
		return model, version, "", true
	case len(parts) == 1 && (parts[0] == "infer" || parts[0] == "ready"):
		return model, version, parts[0], true
	}
	return "", "", "", false
}

// upstreamPath is the path sent to a pod: the version the target pins, or
// the one the client named.
func upstreamPath(model, version, rest string) string {
	p := "/v2/models/" + model
	if version != "" {
		p += "/versions/" + version
	}
	if rest != "" {
		p += "/" + rest
	}
	return p
}
