package forecast

import (
	"bytes"
	"testing"
	"time"
)

// FuzzStoreLoad: a state file is read at start; whatever it holds, Load
// fails cleanly or gives a store whose series can be used.
func FuzzStoreLoad(f *testing.F) {
	// Hour buckets over a day keep the inputs small enough to mutate.
	cfg := Config{Bucket: time.Hour, HistoryDays: 1, TrendWindow: 3 * time.Hour}
	st, _ := NewStore(cfg, 4)
	for ts := int64(0); ts < 86400; ts += 600 {
		_ = st.Add("ml/Deployment/a", ts, float64(ts%600))
	}
	_ = st.Add("ml/StatefulSet/b", 86400*3, 5)
	var buf bytes.Buffer
	if err := st.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add(buf.Bytes()[:len(buf.Bytes())/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := NewStore(cfg, 4)
		if err := s.Load(bytes.NewReader(data)); err != nil {
			return
		}
		s.mu.Lock()
		keys := make([]string, 0, len(s.series))
		for k := range s.series {
			keys = append(keys, k)
		}
		s.mu.Unlock()
		for _, k := range keys {
			for _, at := range []int64{0, 3600, 86400 * 3, 86400 * 30} {
				if v, ok := s.Predict(k, at, 2*time.Minute); ok && !(v >= 0) {
					t.Fatalf("Predict(%q, %d) = %v", k, at, v)
				}
				_ = s.Add(k, at, 1)
			}
		}
	})
}
