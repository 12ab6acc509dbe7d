package scrape

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkParseAndStore parses a 200-series exposition and stores it.
func BenchmarkParseAndStore(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("# HELP inference_requests_total Requests.\n# TYPE inference_requests_total counter\n")
	for i := range 200 {
		fmt.Fprintf(&sb, "inference_requests_total{code=\"200\",model=\"m%d\",method=\"infer\"} %d\n", i, i*10)
	}
	body := []byte(sb.String())
	c, _ := newConfig(nil)
	st := newStore(&c)
	td := st.add(Target{Key: "k"})
	now := t0
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		samples, err := parse(body, textType, c.keeps)
		if err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Second)
		st.commit(td, now, samples, nil)
	}
}

// BenchmarkRate1000Targets queries Rate once per target over 1,000 targets
// with two series each and full rings; ns/op is for all 1,000 queries.
func BenchmarkRate1000Targets(b *testing.B) {
	c, _ := newConfig(nil)
	clock := newFakeClock()
	c.now = clock.Now
	st := newStore(&c)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "ns/pod-" + strconv.Itoa(i)
		td := st.add(Target{Key: keys[i]})
		for j := range 12 {
			v := float64(j * 10)
			st.commit(td, t0.Add(time.Duration(j)*time.Second), []parsedSample{
				{metric: "inference_requests_total", labels: []labelPair{{"code", "200"}}, value: v, kind: KindCounter},
				{metric: "inference_requests_total", labels: []labelPair{{"code", "500"}}, value: v / 10, kind: KindCounter},
			}, nil)
		}
	}
	clock.Advance(11 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			if _, ok := st.Rate(k, "inference_requests_total", nil, 0); !ok {
				b.Fatal("no rate")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/query")
}

// BenchmarkParseModelServer parses what one model-server pod answers (two
// series): the adapter's common scrape, 10,000 of them a second in a large
// cluster, where per-scrape overhead (not the series) is the cost.
func BenchmarkParseModelServer(b *testing.B) {
	body := []byte("# HELP inference_requests_total Inference requests.\n# TYPE inference_requests_total counter\n" +
		"inference_requests_total{model=\"m\",version=\"1\",code=\"200\"} 1234\n" +
		"# HELP inference_queue_depth Requests in flight.\n# TYPE inference_queue_depth gauge\ninference_queue_depth 0\n")
	c, _ := newConfig(nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(body, textType, c.keeps); err != nil {
			b.Fatal(err)
		}
	}
}
