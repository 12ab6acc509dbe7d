package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestBuildV2Request(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inputs  []tensorSpec
		rows    int
		want    string
		wantErr string
	}{
		{"fp32 rows", []tensorSpec{{"features", "FP32", []int64{-1, 3}}}, 2,
			`{"inputs":[{"name":"features","datatype":"FP32","shape":[2,3],"data":[0.5,1.5,2.5,3.5,4.5,5.5]}]}`, ""},
		{"int64", []tensorSpec{{"ids", "INT64", []int64{-1, 2}}}, 1,
			`{"inputs":[{"name":"ids","datatype":"INT64","shape":[1,2],"data":[1,2]}]}`, ""},
		{"bool", []tensorSpec{{"mask", "BOOL", []int64{-1, 2}}}, 1,
			`{"inputs":[{"name":"mask","datatype":"BOOL","shape":[1,2],"data":[true,false]}]}`, ""},
		{"two inputs", []tensorSpec{{"a", "FP32", []int64{-1, 1}}, {"b", "FP32", []int64{-1, 1}}}, 1, "", "2 inputs"},
		{"no batch dimension", []tensorSpec{{"a", "FP32", []int64{4}}}, 1, "", "batch dimension"},
		{"variable width", []tensorSpec{{"a", "FP32", []int64{-1, -1}}}, 1, "", "fixed sizes"},
		{"unknown datatype", []tensorSpec{{"a", "BYTES", []int64{-1, 1}}}, 1, "", "BYTES"},
		{"no rows", []tensorSpec{{"a", "FP32", []int64{-1, 1}}}, 0, "", "rows 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildV2Request(tc.inputs, tc.rows)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// A request built from a server's metadata is what the generator sends.
func TestV2RequestFromMetadataIsSent(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/models/m":
			_, _ = io.WriteString(w, `{"name":"m","versions":["1"],"platform":"gpufleet-mlp","inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}],"outputs":[]}`)
		case "/v2/models/m/infer":
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, string(b))
			mu.Unlock()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	body, err := V2Request(t.Context(), srv.Client(), srv.URL, "m", 4)
	if err != nil {
		t.Fatal(err)
	}
	var req v2Request
	if err := json.Unmarshal(body, &req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Data) != 32 {
		t.Fatalf("request %s (%v): want one input of 4x8 values", body, err)
	}
	if _, err := V2Request(t.Context(), srv.Client(), srv.URL, "nope", 1); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown model: error %v, want the 404", err)
	}

	g := New(5 * time.Second)
	g.SetBody(body)
	g.SetTargets([]string{srv.URL + "/v2/models/m/infer"})
	g.SetRate(200)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies) >= 5, nil
	})
	cancel()
	<-done
	if err != nil {
		t.Fatalf("requests never arrived: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bodies {
		if b != string(body) {
			t.Fatalf("sent body %q, want %q", b, body)
		}
	}
	if g.Failed() != 0 {
		t.Errorf("%d requests failed: %s", g.Failed(), g.LastError())
	}
}
