package autoscale

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadTraceErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		fill     Fill
		want     string
	}{
		{"gap refused", "t_seconds,requests_per_second\n0,1\n10,\n20,3\n", FillError, "x.csv:3: no rate for t=10"},
		{"negative", "t_seconds,requests_per_second\n0,1\n10,-2\n", FillHold, "x.csv:3: rate -2 is negative"},
		{"not a number", "t_seconds,requests_per_second\n0,1\n10,abc\n", FillHold, `x.csv:3: rate "abc" is not a number`},
		{"NaN", "t_seconds,requests_per_second\n0,NaN\n", FillHold, `x.csv:2: rate "NaN" is not a number`},
		{"bad time", "t_seconds,requests_per_second\n0,1\nten,2\n", FillHold, `x.csv:3: time "ten" is not a number`},
		{"unsorted", "t_seconds,requests_per_second\n0,1\n20,2\n10,3\n", FillHold, "x.csv:4: time 10 is not after the previous row's 20 (line 3)"},
		{"repeated time", "t_seconds,requests_per_second\n0,1\n0,2\n", FillHold, "x.csv:3: time 0 is not after"},
		{"genai unsorted", "timestamp_anon,value,container_ip,request_type\n100,1,a,x\n50,1,b,x\n", FillHold, "x.csv:3: time 50 is not after"},
		{"genai empty value", "timestamp_anon,value\n100,\n", FillHold, "x.csv:2: empty value"},
		{"genai missing window", "timestamp_anon,value\n0,1\n60,1\n180,1\n", FillError, "x.csv:4: no rate for t=120"},
		{"short row", "t_seconds,requests_per_second\n0\n", FillHold, "x.csv:2: want 2 columns"},
		{"header", "time,rate\n0,1\n", FillHold, "x.csv:1: want a header with t_seconds,requests_per_second"},
		{"empty", "t_seconds,requests_per_second\n", FillHold, "x.csv: no rows"},
		{"bad fill", "t_seconds,requests_per_second\n0,1\n", Fill("guess"), `unknown fill policy "guess"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace("x.csv", strings.NewReader(tc.in), ReadOptions{Fill: tc.fill})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadTraceFills(t *testing.T) {
	const serving = "t_seconds,requests_per_second\n0,10\n2,\n4,\n6,40\n"
	for _, tc := range []struct {
		name string
		in   string
		o    ReadOptions
		want []float64
		gaps int
	}{
		{"hold", serving, ReadOptions{Fill: FillHold}, []float64{10, 10, 10, 10, 10, 10, 40, 40}, 2},
		{"linear", serving, ReadOptions{Fill: FillLinear}, []float64{10, 10, 20, 20, 30, 30, 40, 40}, 2},
		{"zero", serving, ReadOptions{Fill: FillZero}, []float64{10, 10, 0, 0, 0, 0, 40, 40}, 2},
		{"leading gap held from the first rate", "t_seconds,requests_per_second\n0,\n1,5\n", ReadOptions{Fill: FillHold}, []float64{5, 5}, 1},
		{"no gap", "t_seconds,requests_per_second\n0,1.5\n1,2.5\n", ReadOptions{Fill: FillError}, []float64{1.5, 2.5}, 0},
		{"gap edge below the floor joins the gap", "t_seconds,requests_per_second\n0,100\n1,100\n2,\n3,1\n4,100\n", ReadOptions{Fill: FillHold, GapEdgeFloor: 0.05}, []float64{100, 100, 100, 100, 100}, 2},
		{"genai sums containers and fills missing windows", "timestamp_anon,value,container_ip,request_type\n100,1,a,G\n100,2,b,G\n110,1,a,G\n130,4,a,G\n",
			ReadOptions{Fill: FillZero}, []float64{3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ReadTrace("x.csv", strings.NewReader(tc.in), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tr.Rate); diff != "" {
				t.Errorf("rates (-want +got):\n%s", diff)
			}
			if tr.Gaps != tc.gaps {
				t.Errorf("gaps %d, want %d", tr.Gaps, tc.gaps)
			}
		})
	}
}

// FuzzReadTrace: any input is a trace or an error, never a panic, a
// negative or non-finite rate, or an unbounded allocation.
func FuzzReadTrace(f *testing.F) {
	for _, s := range []string{
		"t_seconds,requests_per_second\n0,986.565\n10,986.565\n20,\n30,1000\n",
		"timestamp_anon,value,container_ip,request_type\n1662859176.0,0.09,,API Requests\n1662859233.0,0.09,dfe0,Generative Requests\n1662859233.0,0.18,cbfb,Generative Requests\n1662859404.0,0.09,,API Requests\n",
		"t_seconds,requests_per_second\n0,-1\n",
		"t_seconds,requests_per_second\n5,1\n3,2\n",
		"t_seconds,requests_per_second\n0,1e308\n1,1e308\n",
		"\ufefft_seconds,requests_per_second\n0,\"1\"\n",
	} {
		f.Add(s, uint8(1), 0.05)
	}
	old := maxTraceSeconds
	maxTraceSeconds = 86400
	f.Cleanup(func() { maxTraceSeconds = old })
	f.Fuzz(func(t *testing.T, in string, fill uint8, floor float64) {
		o := ReadOptions{Fill: Fills[int(fill)%len(Fills)], GapEdgeFloor: floor}
		tr, err := ReadTrace("fuzz.csv", strings.NewReader(in), o)
		if err != nil {
			return
		}
		if len(tr.Rate) == 0 || float64(len(tr.Rate)) > maxTraceSeconds+1 {
			t.Fatalf("%d seconds from %q", len(tr.Rate), in)
		}
		for i, r := range tr.Rate {
			if !(r >= 0) || math.IsInf(r, 0) {
				t.Fatalf("second %d: rate %v from %q", i, r, in)
			}
		}
	})
}
