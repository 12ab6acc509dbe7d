package demo

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"time"
)

// Trace is a service's request rate over time: the rate in each sampling
// window of a request-rate trace such as genai-qps, in the trace's own
// (scaled) units.
//
// A genai-qps row (timestamp_anon,value,container_ip,request_type) is one
// container's request rate, value, in the sampling window starting at
// timestamp_anon; the windows lie on a grid (57 s in genai-qps), and a
// container that served nothing in a window has no row there (the trace
// holds no zero values). The service's rate in a window is therefore the
// sum of value over the window's rows, both request types and every
// container together, and 0 in a window without rows (the traces README:
// "Sum value over containers per time window").
type Trace struct {
	// Start is the first window's start (timestamps are anonymised but kept
	// as seconds).
	Start time.Time
	// Period is the sampling window: the smallest gap between distinct
	// timestamps.
	Period time.Duration
	// Rates holds the service's rate in each window, from Start on.
	Rates []float64
}

// Duration is the time the trace covers: every window.
func (t Trace) Duration() time.Duration { return time.Duration(len(t.Rates)) * t.Period }

// Peak is the highest rate of a window.
func (t Trace) Peak() float64 { return slices.Max(t.Rates) }

// maxTraceErrors bounds the bad rows ReadTrace reports.
const maxTraceErrors = 10

// LoadTrace reads the CSV trace at path (see ReadTrace).
func LoadTrace(path string) (Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return Trace{}, err
	}
	defer func() { _ = f.Close() }()
	t, err := ReadTrace(f)
	if err != nil {
		return Trace{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ReadTrace reads a CSV request-rate trace with a header naming at least
// the columns timestamp_anon (seconds, may have a fraction) and value (a
// rate, finite and not negative); other columns are ignored, rows may come
// in any order. Rows are summed into windows of the trace's period, the
// smallest gap between two distinct timestamps; a row belongs to the window
// its timestamp falls in. Every bad row is reported, with its line.
func ReadTrace(r io.Reader) (Trace, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return Trace{}, fmt.Errorf("reading the header: %w", err)
	}
	tsCol, valCol := slices.Index(header, "timestamp_anon"), slices.Index(header, "value")
	if tsCol < 0 || valCol < 0 {
		return Trace{}, fmt.Errorf("header %q: want the columns timestamp_anon and value", header)
	}
	type row struct{ ts, value float64 }
	var rows []row
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if len(errs) == maxTraceErrors {
			errs = append(errs, errors.New("further errors left out"))
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		line, _ := cr.FieldPos(0)
		ts, err1 := strconv.ParseFloat(rec[tsCol], 64)
		v, err2 := strconv.ParseFloat(rec[valCol], 64)
		switch {
		case err1 != nil || math.IsNaN(ts) || math.IsInf(ts, 0):
			errs = append(errs, fmt.Errorf("line %d: timestamp_anon %q is not a number of seconds", line, rec[tsCol]))
		case err2 != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
			errs = append(errs, fmt.Errorf("line %d: value %q is not a rate (a number, 0 or more)", line, rec[valCol]))
		default:
			rows = append(rows, row{ts, v})
		}
	}
	if len(errs) > 0 {
		return Trace{}, errors.Join(errs...)
	}
	if len(rows) == 0 {
		return Trace{}, errors.New("no rows")
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.ts, b.ts) })
	period := math.Inf(1)
	for i := 1; i < len(rows); i++ {
		if d := rows[i].ts - rows[i-1].ts; d > 0 {
			period = math.Min(period, d)
		}
	}
	if math.IsInf(period, 1) {
		return Trace{}, errors.New("every row has the same timestamp: a trace needs at least two sampling times")
	}
	first, last := rows[0].ts, rows[len(rows)-1].ts
	rates := make([]float64, int((last-first)/period)+1)
	for _, r := range rows {
		rates[min(int((r.ts-first)/period), len(rates)-1)] += r.value
	}
	sec, frac := math.Modf(first)
	return Trace{
		Start:  time.Unix(int64(sec), int64(frac*1e9)).UTC(),
		Period: time.Duration(math.Round(period * float64(time.Second))),
		Rates:  rates,
	}, nil
}
