package scrape

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func targetSeries(s *Scraper, key string) map[string]*series {
	td := s.store.target(key)
	td.mu.RLock()
	defer td.mu.RUnlock()
	return maps.Clone(td.series)
}

func TestMemoryBounds(t *testing.T) {
	t.Run("ring never grows", func(t *testing.T) {
		srv := newExpoServer(t, textType)
		clock := newFakeClock()
		s := newScraper(t, WithClock(clock.Now))
		s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
		for i := range 100 {
			clock.Advance(time.Second)
			srv.Set(http.StatusOK, "# TYPE c_total counter\nc_total "+strconv.Itoa(3*i)+"\n")
			s.ScrapeOnce(context.Background())
			for _, sr := range targetSeries(s, "k") {
				if len(sr.ring) != 12 || sr.n > len(sr.ring) {
					t.Fatalf("after %d scrapes: ring length %d holding %d, want 12 holding at most 12", i+1, len(sr.ring), sr.n)
				}
			}
		}
		got, ok := s.Store().Rate("k", "c_total", nil, 0)
		want := Value{Value: 3, Timestamp: t0.Add(100 * time.Second), Window: 10 * time.Second, Series: 1}
		if diff := cmp.Diff(want, got); !ok || diff != "" {
			t.Errorf("Rate ok=%v (-want +got):\n%s", ok, diff)
		}
	})
	t.Run("series cap drops and counts", func(t *testing.T) {
		srv := newExpoServer(t, textType)
		var b strings.Builder
		for i := range 5 {
			fmt.Fprintf(&b, "g{i=\"%d\"} 1\n", i)
		}
		srv.Set(http.StatusOK, b.String())
		s := newScraper(t, WithMaxSeriesPerTarget(3))
		s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
		s.ScrapeOnce(context.Background())
		s.ScrapeOnce(context.Background())
		if n := len(targetSeries(s, "k")); n != 3 {
			t.Errorf("stored %d series, want 3", n)
		}
		if got := testutil.ToFloat64(s.metrics.seriesDropped); got != 4 {
			t.Errorf("dropped = %v, want 4 (2 per scrape)", got)
		}
		if v, _ := s.Store().Gauge("k", "g", nil); v.Value != 3 {
			t.Errorf("Gauge = %v, want 3 from the stored series", v.Value)
		}
	})
	t.Run("unlisted metrics are not stored", func(t *testing.T) {
		srv := newExpoServer(t, textType)
		srv.Set(http.StatusOK, "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# TYPE b gauge\nb 2\n"+
			"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n"+
			"{\"quoted.name\",x=\"y\"} 3\n")
		s := newScraper(t, WithMetrics("a_total", "h_count"))
		s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
		s.ScrapeOnce(context.Background())
		var got []string
		for _, sr := range targetSeries(s, "k") {
			got = append(got, sr.metric)
		}
		if diff := cmp.Diff([]string{"a_total", "h_count"}, got, cmpSorted); diff != "" {
			t.Errorf("stored metrics (-want +got):\n%s", diff)
		}
	})
	t.Run("series absent longer than the window is forgotten", func(t *testing.T) {
		srv := newExpoServer(t, textType)
		clock := newFakeClock()
		s := newScraper(t, WithClock(clock.Now))
		s.SetTargets([]Target{{Key: "k", URL: srv.URL}})
		srv.Set(http.StatusOK, "a 1\nb 1\n")
		s.ScrapeOnce(context.Background())
		srv.Set(http.StatusOK, "a 1\n")
		for range 11 {
			clock.Advance(time.Second)
			s.ScrapeOnce(context.Background())
		}
		if n := len(targetSeries(s, "k")); n != 1 {
			t.Errorf("stored %d series, want 1", n)
		}
		if n := s.store.seriesCount.Load(); n != 1 {
			t.Errorf("series count = %d, want 1", n)
		}
	})
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestCollector(t *testing.T) {
	good := newExpoServer(t, textType)
	good.Set(http.StatusOK, "g{i=\"1\"} 1\ng{i=\"2\"} 1\ng{i=\"3\"} 1\n")
	bad := newExpoServer(t, textType)
	bad.Set(http.StatusOK, "g{\n")
	s := newScraper(t, WithMaxSeriesPerTarget(2))
	s.SetTargets([]Target{{Key: "good", URL: good.URL}, {Key: "bad", URL: bad.URL}})
	s.ScrapeOnce(context.Background())
	const want = `# HELP gpufleet_adapter_scrapes_total Scrapes of metrics targets by result (ok or error).
# TYPE gpufleet_adapter_scrapes_total counter
gpufleet_adapter_scrapes_total{result="error"} 1
gpufleet_adapter_scrapes_total{result="ok"} 1
# HELP gpufleet_adapter_series Series currently stored over all targets.
# TYPE gpufleet_adapter_series gauge
gpufleet_adapter_series 2
# HELP gpufleet_adapter_series_dropped_total Samples dropped because their target reached the series cap.
# TYPE gpufleet_adapter_series_dropped_total counter
gpufleet_adapter_series_dropped_total 1
# HELP gpufleet_adapter_targets Metrics targets currently scraped.
# TYPE gpufleet_adapter_targets gauge
gpufleet_adapter_targets 2
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want),
		"gpufleet_adapter_scrapes_total", "gpufleet_adapter_series", "gpufleet_adapter_series_dropped_total", "gpufleet_adapter_targets"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(s.Collector(), "gpufleet_adapter_scrape_duration_seconds"); n != 1 {
		t.Errorf("duration histograms = %d, want 1", n)
	}
	if problems, err := testutil.CollectAndLint(s.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	s.SetTargets(nil)
	if got := testutil.ToFloat64(s.metrics.series); got != 0 {
		t.Errorf("series after removing all targets = %v, want 0", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("# TYPE c_total counter\nc_total{a=\"b\"} 1\n"), false)
	f.Add([]byte("# TYPE r counter\nr_total 1 1.5 # {t=\"x\"} 1\nr_created 1\n# EOF\n"), true)
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n"), false)
	f.Add([]byte("{\"a.b\",c=\"d\\\"}\"} +Inf\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, om bool) {
		ct := textType
		if om {
			ct = "application/openmetrics-text; version=1.0.0; charset=utf-8"
		}
		samples, err := parse(data, ct, nil)
		if err != nil {
			return
		}
		lower := strings.ToLower(string(data))
		for _, ps := range samples {
			if math.IsNaN(ps.value) && !strings.Contains(lower, "nan") {
				t.Errorf("NaN for %s not in the input", ps.metric)
			}
			if math.IsInf(ps.value, 0) && !strings.Contains(lower, "inf") {
				t.Errorf("Inf for %s not in the input", ps.metric)
			}
		}
		c, _ := newConfig([]Option{WithMaxSeriesPerTarget(50)})
		st := newStore(&c)
		td := st.add(Target{Key: "k"})
		st.commit(td, t0, samples, nil)
		st.commit(td, t0.Add(time.Second), samples, nil)
		for _, ps := range samples {
			st.Gauge("k", ps.metric, nil)
			st.Rate("k", ps.metric, nil, 0)
		}
	})
}

func TestParseMalformed(t *testing.T) {
	for _, in := range []string{"{}", "# TYPE A counter\n{}", "up{ 1\n", "up 1 2 3\n", "up{a=\"b} 1\n"} {
		if _, err := parse([]byte(in), textType, nil); err == nil {
			t.Errorf("parse(%q) succeeded, want an error", in)
		}
	}
}
