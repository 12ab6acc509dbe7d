package autoscale

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Fill says what the reader does with a gap: a row whose rate is empty
// (serving-qps) or a time window with no row at all (genai-qps).
type Fill string

const (
	// FillError refuses the trace: the error names the line of the gap.
	FillError Fill = "error"
	// FillHold carries the last rate before the gap through it.
	FillHold Fill = "hold"
	// FillLinear interpolates between the rates on both sides of the gap
	// (a gap at the end holds the last rate; one at the start takes the
	// first).
	FillLinear Fill = "linear"
	// FillZero takes the gap as no requests at all. Right for a trace that
	// writes no row for a window without requests; wrong for missing data.
	FillZero Fill = "zero"
)

// Fills lists the fill policies.
var Fills = []Fill{FillError, FillHold, FillLinear, FillZero}

// ParseFill returns the named policy.
func ParseFill(s string) (Fill, error) {
	for _, f := range Fills {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown fill policy %q: use error, hold, linear or zero", s)
}

// Trace is a request rate, one value per second of trace time.
type Trace struct {
	Name string
	// Rate[i] is the demand in requests per second during second i.
	Rate []float64
	// Step is the trace's own resolution in seconds (10 for serving-qps):
	// nothing finer than that is in Rate.
	Step int
	// Gaps is the number of gap windows the fill policy filled, GapEdges
	// how many of them were rows taken as part of a gap (ReadOptions).
	Gaps, GapEdges int
}

// Seconds is the trace's length.
func (t *Trace) Seconds() int { return len(t.Rate) }

// Mean is the mean demand.
func (t *Trace) Mean() float64 {
	var s float64
	for _, r := range t.Rate {
		s += r
	}
	return s / float64(max(len(t.Rate), 1))
}

// ReadOptions say how a trace's gaps are treated.
type ReadOptions struct {
	Fill Fill
	// GapEdgeFloor > 0 takes a row next to a gap whose rate is below
	// GapEdgeFloor x the trace's median as part of the gap (a window that
	// was only partly collected, as serving-qps has at the end of its
	// gaps: 14 requests/s between 0 and 2,100). 0 keeps every row.
	GapEdgeFloor float64
}

// ReadTraceFile reads a trace file; see ReadTrace.
func ReadTraceFile(path string, o ReadOptions) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadTrace(path, f, o)
	if err != nil {
		return nil, err
	}
	t.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return t, nil
}

// point is one time window of a trace: its start, its rate (NaN for a gap)
// and the line it came from.
type point struct {
	t    float64
	rate float64
	line int
}

// maxTraceSeconds bounds a trace's length: 90 days at one value a second
// is 62 MiB (a variable for the fuzz test).
var maxTraceSeconds = 90 * 24 * 3600.0

// ReadTrace reads a request-rate trace in one of two CSV formats, told
// apart by the header:
//
//   - t_seconds,requests_per_second: one row per window, the rate holding
//     until the next row's time (serving-qps). An empty rate is a gap.
//   - timestamp_anon,value[,container_ip,request_type]: rows of one
//     timestamp are summed (genai-qps: one row per container and window);
//     a window with no row is a gap.
//
// Times must increase (equal times only in the second format), rates must
// be finite numbers >= 0. Errors name the file and line. Gaps are filled
// by o.Fill, or refused with FillError: never read as zero silently.
func ReadTrace(name string, r io.Reader, o ReadOptions) (*Trace, error) {
	fill := o.Fill
	if _, err := ParseFill(string(fill)); err != nil {
		return nil, err
	}
	if o.GapEdgeFloor < 0 || o.GapEdgeFloor >= 1 || math.IsNaN(o.GapEdgeFloor) {
		return nil, fmt.Errorf("gap edge floor %v: want a fraction of the median in [0, 1)", o.GapEdgeFloor)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the header: %w", name, err)
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	tCol, vCol, summed := -1, -1, false
	if i, ok := cols["t_seconds"]; ok {
		tCol = i
		if j, ok := cols["requests_per_second"]; ok {
			vCol = j
		}
	} else if i, ok := cols["timestamp_anon"]; ok {
		tCol, summed = i, true
		if j, ok := cols["value"]; ok {
			vCol = j
		}
	}
	if tCol < 0 || vCol < 0 {
		return nil, fmt.Errorf("%s:1: want a header with t_seconds,requests_per_second or timestamp_anon,value (it has %s)", name, strings.Join(header, ","))
	}
	var pts []point
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(tCol, vCol) {
			return nil, fmt.Errorf("%s:%d: want %d columns, the row has %d", name, line, max(tCol, vCol)+1, len(rec))
		}
		ts := strings.TrimSpace(rec[tCol])
		t, err := strconv.ParseFloat(ts, 64)
		if err != nil || math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
			return nil, fmt.Errorf("%s:%d: time %q is not a number of seconds >= 0", name, line, ts)
		}
		vs := strings.TrimSpace(rec[vCol])
		v := math.NaN()
		if vs == "" {
			if summed {
				return nil, fmt.Errorf("%s:%d: empty value (a container's row needs a rate)", name, line)
			}
		} else {
			v, err = strconv.ParseFloat(vs, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s:%d: rate %q is not a number", name, line, vs)
			}
			if v < 0 {
				return nil, fmt.Errorf("%s:%d: rate %v is negative", name, line, v)
			}
		}
		if n := len(pts); n > 0 {
			last := &pts[n-1]
			switch {
			case t < last.t || (t == last.t && !summed):
				return nil, fmt.Errorf("%s:%d: time %v is not after the previous row's %v (line %d): sort the trace by time", name, line, t, last.t, last.line)
			case t == last.t:
				last.rate += v
				if math.IsInf(last.rate, 0) {
					return nil, fmt.Errorf("%s:%d: the rates of time %v add up beyond a float64", name, line, t)
				}
				continue
			}
			if t-pts[0].t > maxTraceSeconds {
				return nil, fmt.Errorf("%s:%d: the trace is longer than %.0f days", name, line, maxTraceSeconds/86400)
			}
		}
		pts = append(pts, point{t: t, rate: v, line: line})
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%s: no rows", name)
	}
	step := typicalStep(pts)
	if pts[len(pts)-1].t-pts[0].t+step > maxTraceSeconds {
		return nil, fmt.Errorf("%s: the trace with its last window of %v s is longer than %.0f days", name, step, maxTraceSeconds/86400)
	}
	if summed {
		pts = missingWindows(pts, step)
	}
	edges := 0
	if o.GapEdgeFloor > 0 {
		edges = gapEdges(pts, o.GapEdgeFloor)
	}
	gaps := 0
	for _, p := range pts {
		if math.IsNaN(p.rate) {
			gaps++
		}
	}
	if gaps > 0 {
		if err := fillGaps(name, pts, fill, step); err != nil {
			return nil, err
		}
	}
	return &Trace{Name: name, Rate: perSecond(pts, step), Step: int(math.Max(1, math.Round(step))), Gaps: gaps, GapEdges: edges}, nil
}

// gapEdges marks as gaps the rows next to a gap (repeatedly: a run of
// them) whose rate is below floor x the median rate, and counts them.
func gapEdges(pts []point, floor float64) int {
	var rates []float64
	for _, p := range pts {
		if !math.IsNaN(p.rate) {
			rates = append(rates, p.rate)
		}
	}
	if len(rates) == 0 {
		return 0
	}
	sort.Float64s(rates)
	limit := floor * rates[len(rates)/2]
	n := 0
	for changed := true; changed; {
		changed = false
		for i := range pts {
			if math.IsNaN(pts[i].rate) || pts[i].rate >= limit {
				continue
			}
			if (i > 0 && math.IsNaN(pts[i-1].rate)) || (i+1 < len(pts) && math.IsNaN(pts[i+1].rate)) {
				pts[i].rate = math.NaN()
				n++
				changed = true
			}
		}
	}
	return n
}

// typicalStep is the most common distance between rows (the trace's
// window), at least one second.
func typicalStep(pts []point) float64 {
	if len(pts) < 2 {
		return 1
	}
	counts := map[float64]int{}
	for i := 1; i < len(pts); i++ {
		counts[pts[i].t-pts[i-1].t]++
	}
	best, n := 1.0, 0
	keys := make([]float64, 0, len(counts))
	for d := range counts {
		keys = append(keys, d)
	}
	sort.Float64s(keys)
	for _, d := range keys {
		if counts[d] > n {
			best, n = d, counts[d]
		}
	}
	return math.Max(best, 1)
}

// missingWindows inserts a gap point for every window of step seconds that
// has no row (a distance of 1.5 steps or more between rows).
func missingWindows(pts []point, step float64) []point {
	out := make([]point, 0, len(pts))
	for i, p := range pts {
		if i > 0 {
			prev := pts[i-1]
			if n := int(math.Round((p.t - prev.t) / step)); float64(p.t-prev.t) >= 1.5*step && n > 1 {
				for k := 1; k < n; k++ {
					out = append(out, point{t: prev.t + float64(k)*step, rate: math.NaN(), line: p.line})
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// fillGaps applies the policy to the NaN rates of pts.
func fillGaps(name string, pts []point, fill Fill, step float64) error {
	for i := range pts {
		if !math.IsNaN(pts[i].rate) {
			continue
		}
		switch fill {
		case FillError:
			return fmt.Errorf("%s:%d: no rate for t=%v (a gap of the trace): choose --fill hold, linear or zero", name, pts[i].line, pts[i].t)
		case FillZero:
			pts[i].rate = 0
		case FillHold:
			pts[i].rate = prevRate(pts, i)
		case FillLinear:
			j := i + 1
			for j < len(pts) && math.IsNaN(pts[j].rate) {
				j++
			}
			a, b := prevRate(pts, i), math.NaN()
			if j < len(pts) {
				b = pts[j].rate
			}
			switch {
			case math.IsNaN(b):
				b = a
			case i == 0:
				a = b
			}
			t0 := pts[i].t - step
			if i > 0 {
				t0 = pts[i-1].t
			}
			t1 := pts[i].t + step
			if j < len(pts) {
				t1 = pts[j].t
			}
			for k := i; k < j; k++ {
				pts[k].rate = a + (b-a)*(pts[k].t-t0)/(t1-t0)
			}
		}
	}
	for i := range pts {
		if math.IsNaN(pts[i].rate) { // a leading gap under hold
			pts[i].rate = firstRate(pts)
		}
	}
	return nil
}

func prevRate(pts []point, i int) float64 {
	if i == 0 {
		return firstRate(pts)
	}
	return pts[i-1].rate
}

func firstRate(pts []point) float64 {
	for _, p := range pts {
		if !math.IsNaN(p.rate) {
			return p.rate
		}
	}
	return 0
}

// perSecond resamples the windows to one value per second, each window's
// rate holding until the next; the last holds for one step.
func perSecond(pts []point, step float64) []float64 {
	t0 := pts[0].t
	end := pts[len(pts)-1].t - t0 + step
	n := int(math.Ceil(end))
	out := make([]float64, n)
	j := 0
	for s := range out {
		for j+1 < len(pts) && pts[j+1].t-t0 <= float64(s) {
			j++
		}
		out[s] = pts[j].rate
	}
	return out
}
