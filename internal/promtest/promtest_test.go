package promtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"
)

// exporter serves fixed exposition text on loopback and returns its address.
func exporter(t *testing.T, text string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(text))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// series returns the label sets of the series of an instant query.
func (s *Server) series(ctx context.Context, q string) ([]map[string]string, error) {
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	code, err := s.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &r)
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("query %s: HTTP %d %v", q, code, err)
	}
	var out []map[string]string
	for _, res := range r.Data.Result {
		out = append(out, res.Metric)
	}
	return out, nil
}

func TestServer(t *testing.T) {
	pod := exporter(t, "inference_queue_depth{model=\"m\"} 3\n")
	agent := exporter(t, "gpufleet_pod_gpu_utilization_ratio{namespace=\"ns\",pod=\"p\",gpu=\"0\"} 0.5\n")
	s := Start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Targets added at run time, through file_sd.
	if err := s.SetTargets([]Target{
		{Addr: pod, Labels: map[string]string{"namespace": "ns", "pod": "p"}},
		{Addr: agent, Labels: map[string]string{"node": "n", "pod": "agent-pod"}, Agent: true},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitForTargetsUp(ctx, 2); err != nil {
		t.Fatal(err)
	}

	want := map[string][]map[string]string{
		// Target labels added to the pod's series.
		"inference_queue_depth": {{
			"__name__": "inference_queue_depth", "model": "m", "namespace": "ns", "pod": "p",
			"job": podsJob, "instance": pod,
		}},
		// honor_labels: the agent's series keep their pod label; node comes
		// from the target.
		"gpufleet_pod_gpu_utilization_ratio": {{
			"__name__": "gpufleet_pod_gpu_utilization_ratio", "namespace": "ns", "pod": "p", "gpu": "0",
			"node": "n", "job": agentsJob, "instance": agent,
		}},
	}
	for q, w := range want {
		var got []map[string]string
		err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			var err error
			got, err = s.series(ctx, q)
			return err == nil && len(got) > 0, nil
		})
		if err != nil {
			t.Fatalf("%s never appeared: %v", q, err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s series (-want +got):\n%s", q, diff)
		}
	}

	// Replacing the targets drops the pod.
	if err := s.SetTargets([]Target{{Addr: agent, Labels: map[string]string{"node": "n"}, Agent: true}}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		var r targetsResponse
		code, err := s.get(ctx, "/api/v1/targets?state=active", &r)
		return err == nil && code == http.StatusOK && len(r.Data.ActiveTargets) == 1, nil
	})
	if err != nil {
		t.Errorf("the replaced target is still active: %v", err)
	}
}

func TestSetTargetsNeedsAddress(t *testing.T) {
	s := &Server{dir: t.TempDir()}
	if err := s.SetTargets([]Target{{Labels: map[string]string{"pod": "p"}}}); err == nil || !strings.Contains(err.Error(), "target 0 has no address") {
		t.Errorf("error = %v", err)
	}
}

// fatalTB records the message of Fatalf and ends the goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestStartWithoutPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("Start skips in -short mode")
	}
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, Config{})
	}()
	<-done
	if !strings.Contains(f.msg, "prometheus is not installed: run `make deps` (apt-get install prometheus)") {
		t.Errorf("Fatalf message %q", f.msg)
	}
}
