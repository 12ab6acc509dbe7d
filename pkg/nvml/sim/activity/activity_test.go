package activity

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseActivity(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{`{"pid": 7, "gpus": [{"index": 0, "busySecondsTotal": 1.5, "memoryBytes": 10}]}`, ""},
		{`{"pid": 7, "pod": {"namespace": "a", "name": "b"}, "gpus": []}`, ""},
		{`{"pid": 7, "gpus": [{"index": 8}]}`, "gpus[0].index: 8 is not a GPU"},
		{`{"pid": 7, "gpus": [{"index": 1}, {"index": 1}]}`, "listed twice"},
		{`{"pid": 7, "gpus": [{"index": 0, "busySecondsTotal": -1}]}`, "busySecondsTotal"},
		{`{"gpus": []}`, "pid: must be set"},
		{`{"pid": 7, "gpu": []}`, `unknown field "gpu"`},
		{`{"pid": 7, "pod": {"name": "b"}}`, "namespace and name"},
		{`{"pid": 7} {}`, "trailing data"},
		{`{"pid": -7}`, "decoding activity"},
		{``, "decoding activity"},
	} {
		_, err := ParseActivity([]byte(tc.in), 8)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzParseActivity(f *testing.F) {
	f.Add([]byte(`{"pid": 7, "gpus": [{"index": 0, "busySecondsTotal": 1.5, "memoryBytes": 10}]}`))
	f.Add([]byte(`{"pid": 7, "pod": {"namespace": "a", "name": "b"}, "gpus": [{"index": 7}]}`))
	f.Add([]byte(`{"pid": 1e99}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseActivity(data, 8)
		if err != nil {
			return
		}
		if a.PID == 0 {
			t.Fatal("accepted pid 0")
		}
		for _, g := range a.GPUs {
			if g.Index < 0 || g.Index >= 8 || !(g.BusySecondsTotal >= 0) {
				t.Fatalf("accepted %+v", g)
			}
		}
		// What is accepted survives a round trip.
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseActivity(again, 8); err != nil {
			t.Fatalf("round trip of %s: %v", again, err)
		}
	})
}
