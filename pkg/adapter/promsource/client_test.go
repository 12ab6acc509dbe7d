package promsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

func TestRequest(t *testing.T) {
	f := &fakeProm{status: http.StatusOK, body: vector()}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s, err := New(srv.URL+"/prometheus/", WithQueryTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NodeValues(context.Background(), nodeG, []string{"n1"}, nil); err != nil {
		t.Fatal(err)
	}
	want := []recorded{{
		method:      http.MethodPost,
		contentType: "application/x-www-form-urlencoded",
		path:        "/prometheus/api/v1/query",
		query:       `avg by (node) (gpufleet_gpu_utilization_ratio{node="n1"})`,
		timeout:     "1.5",
	}}
	if diff := cmp.Diff(want, f.recorded(), cmp.AllowUnexported(recorded{})); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestResponseErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{
			name:    "error status",
			status:  http.StatusBadRequest,
			body:    `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": parse error"}`,
			wantErr: `HTTP 400: bad_data: invalid parameter "query": parse error`,
		},
		{
			name:    "error status with HTTP 200",
			status:  http.StatusOK,
			body:    `{"status":"error","errorType":"execution","error":"query processing would load too many samples"}`,
			wantErr: "HTTP 200: execution: query processing would load too many samples",
		},
		{
			name:    "unknown status",
			status:  http.StatusOK,
			body:    `{"status":"maybe"}`,
			wantErr: `response status "maybe"`,
		},
		{
			name:    "HTTP 500 text",
			status:  http.StatusInternalServerError,
			body:    "upstream exploded",
			wantErr: "HTTP 500: upstream exploded",
		},
		{
			name:    "HTTP 503 with success body",
			status:  http.StatusServiceUnavailable,
			body:    vector(),
			wantErr: "HTTP 503 with a successful response body",
		},
		{
			name:    "matrix",
			status:  http.StatusOK,
			body:    `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			wantErr: `result type "matrix", want "vector"`,
		},
		{
			name:    "scalar",
			status:  http.StatusOK,
			body:    `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`,
			wantErr: `result type "scalar", want "vector"`,
		},
		{
			name:    "malformed JSON",
			status:  http.StatusOK,
			body:    `{"status":"success","data":`,
			wantErr: "decoding the response",
		},
		{
			name:    "malformed vector",
			status:  http.StatusOK,
			body:    `{"status":"success","data":{"resultType":"vector","result":{"a":1}}}`,
			wantErr: "decoding the vector result",
		},
		{
			name:    "unquoted value",
			status:  http.StatusOK,
			body:    vector(`{"metric":{"namespace":"ns","pod":"p"},"value":[1700000000,1]}`),
			wantErr: "sample 0: value 1 is not a quoted number",
		},
		{
			name:    "null sample",
			status:  http.StatusOK,
			body:    vector("null"),
			wantErr: "decoding the vector result: sample 0: null",
		},
		{
			name:    "bad time",
			status:  http.StatusOK,
			body:    vector(`{"metric":{},"value":["1700000000","1"]}`),
			wantErr: `sample 0: time "1700000000" is not a Unix time in seconds`,
		},
		{
			name:    "huge time",
			status:  http.StatusOK,
			body:    vector(`{"metric":{},"value":[1e300,"1"]}`),
			wantErr: "sample 0: time 1e300 is not a Unix time in seconds",
		},
		{
			name:    "value not a number",
			status:  http.StatusOK,
			body:    vector(`{"metric":{},"value":[1700000000,"one"]}`),
			wantErr: `sample 0: value "one" is not a number`,
		},
		{
			name:    "labels not strings",
			status:  http.StatusOK,
			body:    vector(`{"metric":{"pod":1},"value":[1700000000,"1"]}`),
			wantErr: "decoding the vector result",
		},
		{
			name:    "short value pair",
			status:  http.StatusOK,
			body:    vector(`{"metric":{"namespace":"ns","pod":"p"},"value":[1700000000]}`),
			wantErr: `sample 0: value has 1 elements, want [time, "value"]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{status: tt.status, body: tt.body}
			s, url := f.start(t)
			values, ok, err := s.PodValues(context.Background(), queue, []source.Pod{{Namespace: "ns", Name: "p"}}, nil)
			if err == nil {
				t.Fatalf("no error; values %v ok %v", values, ok)
			}
			for _, w := range []string{
				tt.wantErr,
				"metric inference_queue_depth",
				"querying Prometheus at " + url,
				`(query: sum by (namespace, pod) (inference_queue_depth{namespace="ns",pod="p"}))`,
			} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLongQueryTruncatedInErrors(t *testing.T) {
	f := &fakeProm{status: http.StatusBadRequest, body: `{"status":"error","errorType":"bad_data","error":"no"}`}
	s, _ := f.start(t)
	var pods []source.Pod
	for i := range 200 {
		pods = append(pods, source.Pod{Namespace: "ns", Name: fmt.Sprintf("inference-server-%04d", i)})
	}
	_, _, err := s.PodValues(context.Background(), queue, pods, nil)
	if err == nil {
		t.Fatal("no error")
	}
	q := f.queries()[0]
	if strings.Contains(err.Error(), q) || !strings.Contains(err.Error(), fmt.Sprintf("... (%d bytes)", len(q))) {
		t.Errorf("error does not shorten the %d-byte query: %v", len(q), err)
	}
	if len(err.Error()) > 500 {
		t.Errorf("error is %d bytes long: %v", len(err.Error()), err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	f := &fakeProm{status: http.StatusInternalServerError, body: "no"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s, err := New(strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.NodeValues(context.Background(), nodeG, []string{"n"}, nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "user:xxxxx@") {
		t.Errorf("error = %v, want one with the password redacted", err)
	}
}

func TestContext(t *testing.T) {
	pods := []source.Pod{{Namespace: "ns", Name: "p"}}

	t.Run("query timeout", func(t *testing.T) {
		f := &fakeProm{block: true}
		s, _ := f.start(t, WithQueryTimeout(50*time.Millisecond))
		start := time.Now()
		_, _, err := s.PodValues(context.Background(), rps, pods, nil)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within the query timeout 50ms") {
			t.Errorf("error = %v, want the query timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("returned after %v", d)
		}
	})
	t.Run("caller deadline", func(t *testing.T) {
		f := &fakeProm{block: true}
		s, _ := f.start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := s.PodValues(ctx, rps, pods, nil)
		if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "query timeout") {
			t.Errorf("error = %v, want the caller's deadline", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		f := &fakeProm{block: true, arrived: make(chan struct{})}
		s, _ := f.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-f.arrived
			cancel()
		}()
		_, _, err := s.PodValues(ctx, rps, pods, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("canceled before", func(t *testing.T) {
		f := &fakeProm{status: http.StatusOK, body: vector()}
		s, _ := f.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := s.PodValues(ctx, rps, pods, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		s, err := New(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.PodValues(context.Background(), rps, pods, nil)
		if err == nil || !strings.Contains(err.Error(), "querying Prometheus at "+url) {
			t.Errorf("error = %v", err)
		}
	})
}
