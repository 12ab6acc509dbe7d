package forecast

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

const day = 86400

func newSeries(t *testing.T) *Series {
	t.Helper()
	s, err := NewSeries(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed adds rate(t) every 10 s over [from, to).
func feed(s *Series, from, to int64, rate func(int64) float64) {
	for t := from; t < to; t += 10 {
		s.Add(t, rate(t))
	}
}

func TestPredict(t *testing.T) {
	// Daily: 100/s, 400/s from 12:00 to 13:00.
	daily := func(t int64) float64 {
		if h := (t % day) / 3600; h == 12 {
			return 400
		}
		return 100
	}
	for _, tc := range []struct {
		name    string
		history [2]int64
		rate    func(int64) float64
		at      int64
		horizon time.Duration
		want    float64
		tol     float64
	}{
		{"flat", [2]int64{0, 3600}, func(int64) float64 { return 50 }, 3600, 2 * time.Minute, 50, 1e-3},
		// A ramp of 1/s per second: the last bucket's mean is 30 s behind
		// the newest sample; the lead adds 120 s of slope.
		{"trend", [2]int64{0, 3600}, func(t int64) float64 { return float64(t) }, 3600, 2 * time.Minute, 3565 + 120, 1},
		{"falling trend stays at the level (the caller takes the larger of it and the reactive rate)", [2]int64{0, 3600},
			func(t int64) float64 { return float64(4000 - t) }, 3600, 2 * time.Minute, 435, 1},
		{"no day of history: a daily step is not foreseen", [2]int64{0, 12*3600 - 60}, daily, 12*3600 - 60, 2 * time.Minute, 100, 1e-3},
		{"two days of history: the step at 12:00 is foreseen a minute ahead", [2]int64{0, 2*day + 12*3600 - 60}, daily, 2*day + 12*3600 - 60, 2 * time.Minute, 400, 1e-3},
		{"the horizon ends before the step", [2]int64{0, 2*day + 12*3600 - 300}, daily, 2*day + 12*3600 - 300, 2 * time.Minute, 100, 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeries(t)
			feed(s, tc.history[0], tc.history[1], tc.rate)
			got, ok := s.Predict(tc.at, tc.horizon)
			if !ok || math.Abs(got-tc.want) > tc.tol {
				t.Errorf("Predict = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

func TestMemoryIsBounded(t *testing.T) {
	s := newSeries(t)
	n := len(s.sum)
	feed(s, 0, 20*day, func(int64) float64 { return 1 })
	if len(s.sum) != n || len(s.n) != n || n != 8*1440 {
		t.Errorf("ring of %d buckets after 20 days, want %d = 8 days of minutes", len(s.sum), n)
	}
	if h := s.History(); h != 8*24*time.Hour {
		t.Errorf("history %v, want 8 days", h)
	}
	// A sample older than the ring is dropped, not written over new data.
	s.Add(day, 1e6)
	if v, _ := s.Predict(20*day, time.Minute); v != 1 {
		t.Errorf("after an old sample: %v, want 1", v)
	}
}

func TestGapLeavesNoStaleBuckets(t *testing.T) {
	s := newSeries(t)
	feed(s, 0, 3600, func(int64) float64 { return 500 })
	// Down for nine days (longer than the ring): nothing of before is left.
	feed(s, 10*day, 10*day+600, func(int64) float64 { return 20 })
	if v, ok := s.Predict(10*day+600, 2*time.Minute); !ok || v != 20 {
		t.Errorf("after the gap: %v, %v; want 20", v, ok)
	}
	if v, ok := s.Predict(20*day, 2*time.Minute); ok {
		t.Errorf("with nothing in the trend window: %v, want no forecast", v)
	}
}

func TestStoreSaveLoad(t *testing.T) {
	st, err := NewStore(DefaultConfig(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for ts := int64(0); ts < 2*day; ts += 10 {
		v := 100.0
		if (ts%day)/3600 == 12 {
			v = 400
		}
		if err := st.Add("ml/Deployment/bert", ts, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Add("ml/Deployment/gpt", 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := st.Add("ml/Deployment/third", 0, 1); err != ErrFull {
		t.Fatalf("a third series: %v, want ErrFull", err)
	}
	var buf bytes.Buffer
	if err := st.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	restarted, _ := NewStore(DefaultConfig(), 2)
	if err := restarted.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	at := int64(2*day + 12*3600 - 60)
	for _, s := range []*Store{st, restarted} {
		_ = s.Add("ml/Deployment/bert", at, 100)
	}
	want, _ := st.Predict("ml/Deployment/bert", at, 2*time.Minute)
	got, ok := restarted.Predict("ml/Deployment/bert", at, 2*time.Minute)
	if !ok || got != want || want != 400 {
		t.Errorf("after a restart: %v, %v; before: %v (want 400)", got, ok, want)
	}
	other := DefaultConfig()
	other.HistoryDays = 2
	mismatched, _ := NewStore(other, 2)
	if err := mismatched.Load(bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "over 8 days") {
		t.Errorf("loading 8 days into a 2-day store: %v", err)
	}
	st.Retain(func(k string) bool { return k != "ml/Deployment/gpt" })
	if st.Len() != 1 {
		t.Errorf("%d series after Retain, want 1", st.Len())
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Bucket: 7 * time.Second, HistoryDays: 9, TrendWindow: time.Second}.Validate()
	for _, want := range []string{"bucket 7s", "history of 9 days", "trend window 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
}
