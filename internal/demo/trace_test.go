package demo

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// smallTrace has windows of 10 s from t=100: two containers in the first,
// one in the second, none in the third and an API row in the fourth, given
// out of order.
const smallTrace = `timestamp_anon,value,container_ip,request_type
110.0,3,a,Generative Requests
100.0,1,a,Generative Requests
100.0,2,b,Generative Requests
130.0,4,,API Requests
`

func TestReadTraceSumsEachWindow(t *testing.T) {
	got, err := ReadTrace(strings.NewReader(smallTrace))
	if err != nil {
		t.Fatal(err)
	}
	want := Trace{Start: time.Unix(100, 0).UTC(), Period: 10 * time.Second, Rates: []float64{3, 3, 0, 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
	if got.Duration() != 40*time.Second || got.Peak() != 4 {
		t.Errorf("duration %v, peak %v; want 40s and 4", got.Duration(), got.Peak())
	}
}

func TestReadTraceOffGridRowsJoinTheirWindow(t *testing.T) {
	got, err := ReadTrace(strings.NewReader("value,timestamp_anon\n1,0.5\n2,2.5\n0.25,2.9\n1,4.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Smallest gap 0.4 s: windows [0.5, 0.9), ..., the 2.5 and 2.9 rows in
	// windows 5 and 6, 4.5 in window 10.
	if got.Period != 400*time.Millisecond || len(got.Rates) != 11 {
		t.Fatalf("period %v, %d windows; want 400ms and 11", got.Period, len(got.Rates))
	}
	if got.Rates[0] != 1 || got.Rates[5] != 2 || got.Rates[6] != 0.25 || got.Rates[10] != 1 {
		t.Errorf("rates %v", got.Rates)
	}
}

func TestReadTraceReportsEveryBadRow(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{"no header columns", "time,qps\n1,2\n", []string{"want the columns timestamp_anon and value"}},
		{"empty", "timestamp_anon,value\n", []string{"no rows"}},
		{"one time", "timestamp_anon,value\n5,1\n5,2\n", []string{"at least two sampling times"}},
		{"bad rows", "timestamp_anon,value\nx,1\n2,-1\n3,NaN\n4,1\n", []string{
			`line 2: timestamp_anon "x"`, `line 3: value "-1"`, `line 4: value "NaN"`,
		}},
		{"ragged", "timestamp_anon,value\n1,2,3\n", []string{"wrong number of fields"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.csv))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCompress(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader(smallTrace)) // rates 3, 3, 0, 4 over 40 s
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		duration, step time.Duration
		peak           float64
		want           []float64
		speed          float64
	}{
		// 20 s of trace per step: (3x10 + 3x10)/20 = 3 and (0x10 + 4x10)/20 = 2.
		{"two steps", 2 * time.Second, time.Second, 10, []float64{10, 20.0 / 3}, 20},
		// 13.3 s per step: (30 + 3x3.3)/13.3 = 3, (3x6.7 + 0)/13.3 = 1.5, (0 + 40)/13.3 = 3.
		{"windows split between steps", 3 * time.Second, time.Second, 6, []float64{6, 3, 6}, 40.0 / 3},
		// Finer than the trace: each window holds over two steps.
		{"finer than the trace", 4 * time.Second, 500 * time.Millisecond, 8, []float64{6, 6, 6, 6, 0, 0, 8, 8}, 10},
		// Rounded to whole steps.
		{"rounded", 2400 * time.Millisecond, time.Second, 3, []float64{3, 2}, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compress(tr, tc.duration, tc.step, tc.peak)
			if err != nil {
				t.Fatal(err)
			}
			approx := cmpopts.EquateApprox(0, 1e-12)
			if diff := cmp.Diff(tc.want, s.Rates, approx); diff != "" {
				t.Errorf("rates (-want +got):\n%s", diff)
			}
			if math.Abs(s.Speed-tc.speed) > 1e-12 || s.Step != tc.step {
				t.Errorf("speed %v, step %v; want %v, %v", s.Speed, s.Step, tc.speed, tc.step)
			}
			if s.Peak() != tc.peak {
				t.Errorf("peak %v, want %v", s.Peak(), tc.peak)
			}
		})
	}
}

func TestCompressKeepsTheVolume(t *testing.T) {
	// 18 requests over 7 s into 5 steps of 1.4 s of trace: 3, 4.6, 0.4, 4.2
	// and 5.8 requests, so rates of those / 1.4, the highest 5.8 / 1.4.
	// With peak 5.8 the scale is 1.4: each step's rate is its requests.
	tr := Trace{Period: time.Second, Rates: []float64{1, 5, 2, 0, 0, 7, 3}}
	s, err := Compress(tr, 5*time.Second, time.Second, 5.8)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{3, 4.6, 0.4, 4.2, 5.8}, s.Rates, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("rates (-want +got):\n%s", diff)
	}
	if math.Abs(s.Mean()-18.0/5) > 1e-12 {
		t.Errorf("mean %v, want 3.6", s.Mean())
	}
}

func TestCompressErrors(t *testing.T) {
	tr := Trace{Period: time.Second, Rates: []float64{0, 0}}
	if _, err := Compress(tr, time.Second, time.Second, 10); err == nil || !strings.Contains(err.Error(), "no requests") {
		t.Errorf("all-zero trace: %v", err)
	}
	_, err := Compress(Trace{}, 0, 0, -1)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"empty trace", "must be positive", "peak rate -1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestScheduleRateAt(t *testing.T) {
	s := Schedule{Step: time.Second, Rates: []float64{1, 2, 3}, Speed: 100}
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{
		{-time.Millisecond, 0}, {0, 1}, {999 * time.Millisecond, 1}, {time.Second, 2}, {2500 * time.Millisecond, 3}, {3 * time.Second, 0}, {time.Hour, 0},
	} {
		if got := s.RateAt(tc.at); got != tc.want {
			t.Errorf("RateAt(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if s.Duration() != 3*time.Second || s.TraceOffset(1500*time.Millisecond) != 150*time.Second || s.Mean() != 2 {
		t.Errorf("duration %v, offset %v, mean %v", s.Duration(), s.TraceOffset(1500*time.Millisecond), s.Mean())
	}
}

// TestGenAIQPSTrace checks the shipped trace's shape when it is there: the
// numbers docs/demo.md quotes.
func TestGenAIQPSTrace(t *testing.T) {
	path := filepath.Join("..", "..", DefaultTrace)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	tr, err := LoadTrace(path)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Period != 57*time.Second || len(tr.Rates) != 1410 {
		t.Errorf("period %v, %d windows; want 57s and 1410 (22.3 h)", tr.Period, len(tr.Rates))
	}
	s, err := Compress(tr, 3*time.Minute, time.Second, 40)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Speed-446.5) > 0.1 || s.Mean() < 10 || s.Mean() > 16 {
		t.Errorf("speed %v, mean %v requests/s; want about 446.5 and 13", s.Speed, s.Mean())
	}
}
