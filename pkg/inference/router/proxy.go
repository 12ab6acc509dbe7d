package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gpufleet/gpufleet/pkg/inference/serving"
)

// hopHeaders are per-connection headers, never forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// serveModel routes /v2/models/... : metadata, readiness and inference.
func (r *Router) serveModel(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	r.inFlight.Add(1)
	defer r.inFlight.Done()
	model, version, rest, ok := parsePath(req.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", req.Method, req.URL.Path))
		return
	}
	infer := rest == "infer"
	switch {
	case infer && req.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, req.Method+" not allowed: inference takes POST")
		return
	case !infer && req.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, req.Method+" not allowed here: use GET")
		return
	}
	rq := &request{model: model, version: version, header: req.Header}
	if infer {
		// A fresh buffer per request, sized by Content-Length: a transport
		// may still read a request body after RoundTrip returned, so a
		// pooled one could be handed to the next request too early.
		body, err := serving.ReadBody(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes), make([]byte, 0, bodyCap(req.ContentLength, r.cfg.MaxBodyBytes)))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				r.answer(w, nil, model, start, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the %d-byte limit", tooBig.Limit))
			} else {
				r.answer(w, nil, model, start, http.StatusBadRequest, "reading request body: "+err.Error())
			}
			return
		}
		rq.body = body
	}
	t := r.table.Load()
	rt, err := t.find(rq)
	if err != nil {
		r.answer(w, nil, model, start, http.StatusBadRequest, err.Error())
		return
	}
	if rt == nil {
		r.answer(w, nil, model, start, http.StatusNotFound, fmt.Sprintf("no route for model %q: the router's rules send it nowhere", model))
		return
	}
	if infer {
		if !r.admit(w, t.global, globalLimit, rt, start) || !r.admit(w, rt.limiter, rt.name, rt, start) {
			return
		}
		r.budget.deposit()
	}
	tgt := rt.split.pickRandom()
	if infer {
		tgt.requests.Inc()
	}
	if tgt.version != "" {
		version = tgt.version
	}
	code := r.forward(w, req, rt, tgt, upstreamPath(model, version, rest), rq.body)
	r.observe(rt, start, code)
}

// admit takes a token from l (nil admits); refused, it answers 429.
func (r *Router) admit(w http.ResponseWriter, l *tokenBucket, label string, rt *route, start time.Time) bool {
	if l == nil {
		return true
	}
	ok, wait := l.take()
	if ok {
		return true
	}
	r.metrics.rateLimited.WithLabelValues(label).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
	what := "the router's global"
	if label != globalLimit {
		what = "route " + label + "'s"
	}
	r.answer(w, rt, rt.match.Model, start, http.StatusTooManyRequests, fmt.Sprintf("over %s rate limit; retry later", what))
	return false
}

// answer writes an error of the router's own and counts it.
func (r *Router) answer(w http.ResponseWriter, rt *route, model string, start time.Time, code int, msg string) {
	writeError(w, code, msg)
	if rt == nil {
		rt = &route{name: noRoute, modelLabel: otherModel}
	}
	r.observe(rt, start, code)
}

func (r *Router) observe(rt *route, start time.Time, code int) {
	r.metrics.requests.WithLabelValues(rt.name, rt.modelLabel, strconv.Itoa(code)).Inc()
	r.metrics.duration.WithLabelValues(rt.name, rt.modelLabel).Observe(time.Since(start).Seconds())
}

// attempt outcomes.
const (
	outcomeAnswered    = iota // a response to pass on
	outcomeRefused            // 429 or 503: the pod did not run it
	outcomeUnreachable        // nothing was sent
	outcomeBroken             // sent, then the connection failed: it may have run
	outcomeTimeout
	outcomeCanceled
)

// forward sends the request to pods of tgt's backend, retrying on another
// pod only what surely did not run there: a refusal (429 or 503, which the
// inference server answers before queueing: queue full, shutting down) or
// a failure before any byte was written. A request that may have run (a
// connection lost after sending, a timeout, any other status) is never
// sent again. It returns the status the client got.
func (r *Router) forward(w http.ResponseWriter, in *http.Request, rt *route, tgt *target, path string, body []byte) int {
	var tried []*Endpoint
	var lastResp *http.Response
	var lastBody []byte
	for attempt := 0; ; attempt++ {
		ep := tgt.pool.pick(tried)
		if ep == nil {
			if lastResp != nil {
				return copyResponse(w, lastResp, bytes.NewReader(lastBody))
			}
			msg := fmt.Sprintf("backend %s has no ready pod", tgt.backend)
			if len(tried) > 0 {
				msg = fmt.Sprintf("backend %s: no pod reachable (%d tried)", tgt.backend, len(tried))
			}
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, msg+"; retry later")
			return http.StatusServiceUnavailable
		}
		tried = append(tried, ep)
		resp, outcome, cancel := r.send(in, ep, path, body)
		if outcome == outcomeAnswered {
			code := copyResponse(w, resp, resp.Body)
			_ = resp.Body.Close()
			cancel()
			ep.outstanding.Add(-1)
			if code >= 500 {
				r.metrics.upstreamErrors.WithLabelValues(rt.name, rt.modelLabel, "status_5xx").Inc()
			}
			return code
		}
		ep.outstanding.Add(-1)
		if outcome == outcomeRefused {
			lastBody, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			lastResp = resp
			lastResp.ContentLength = int64(len(lastBody))
		}
		cancel()
		kind, retryable := outcomeKind(outcome)
		r.metrics.upstreamErrors.WithLabelValues(rt.name, rt.modelLabel, kind).Inc()
		if retryable && attempt+1 < r.cfg.MaxAttempts && in.Context().Err() == nil && r.budget.spend() {
			r.metrics.retries.WithLabelValues(rt.name, rt.modelLabel, kind).Inc()
			continue
		}
		switch {
		case lastResp != nil && outcome == outcomeRefused:
			return copyResponse(w, lastResp, bytes.NewReader(lastBody))
		case outcome == outcomeUnreachable:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("backend %s: no pod reachable (%d tried); retry later", tgt.backend, len(tried)))
			return http.StatusServiceUnavailable
		case outcome == outcomeTimeout:
			writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("pod %s of backend %s did not answer within %s", ep.Addr, tgt.backend, r.cfg.UpstreamTimeout))
			return http.StatusGatewayTimeout
		case outcome == outcomeCanceled:
			return 499 // the client went away; nobody reads this
		}
		writeError(w, http.StatusBadGateway, fmt.Sprintf("pod %s of backend %s failed while serving the request (not retried: it may have run)", ep.Addr, tgt.backend))
		return http.StatusBadGateway
	}
}

func outcomeKind(o int) (string, bool) {
	switch o {
	case outcomeRefused:
		return "refused", true
	case outcomeUnreachable:
		return "unreachable", true
	case outcomeTimeout:
		return "timeout", false
	case outcomeCanceled:
		return "canceled", false
	}
	return "broken", false
}

// send makes one attempt at ep, holding one of its outstanding slots (the
// caller gives it back). cancel ends the attempt's context after the body
// is read.
func (r *Router) send(in *http.Request, ep *Endpoint, path string, body []byte) (*http.Response, int, context.CancelFunc) {
	ep.outstanding.Add(1)
	ctx, cancel := context.WithTimeout(in.Context(), r.cfg.UpstreamTimeout)
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { wrote.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(ctx, in.Method, "http://"+ep.Addr+path, rd)
	if err != nil {
		return nil, outcomeUnreachable, cancel
	}
	copyHeaders(out.Header, in.Header)
	if body != nil {
		out.ContentLength = int64(len(body))
	}
	sent := time.Now()
	resp, err := r.cfg.Transport.RoundTrip(out)
	switch {
	case err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable):
		// A quick refusal says nothing of how fast the pod serves.
		return resp, outcomeRefused, cancel
	case err == nil:
		now := time.Now()
		ep.latency.observe(now.Sub(sent), now)
		return resp, outcomeAnswered, cancel
	case in.Context().Err() != nil:
		return nil, outcomeCanceled, cancel
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return nil, outcomeTimeout, cancel
	case !wrote.Load():
		return nil, outcomeUnreachable, cancel
	}
	return nil, outcomeBroken, cancel
}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
	dst.Del("Content-Length")
}

// copyResponse passes a pod's answer on; it returns the status.
func copyResponse(w http.ResponseWriter, resp *http.Response, body io.Reader) int {
	copyHeaders(w.Header(), resp.Header)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, body)
	return resp.StatusCode
}

// bodyCap is the buffer for a body of the announced length (-1: unknown).
func bodyCap(contentLength, limit int64) int64 {
	if contentLength < 0 {
		return 4096
	}
	return min(contentLength, limit) + 1
}
