package localcluster_test

import (
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// BenchmarkControlPlaneStart measures Start until /readyz answers, plus a
// first simulated GPU node, and Stop. Run it with -benchtime=Nx: it reports
// the median and the worst start of the N.
func BenchmarkControlPlaneStart(b *testing.B) {
	var starts, stops []time.Duration
	for b.Loop() {
		t0 := time.Now()
		c, err := localcluster.Start(b.Context(), localcluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := localcluster.CreateGPUNode(b.Context(), kubernetes.NewForConfigOrDie(c.Config), localcluster.GPUNode{Name: "n"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		starts = append(starts, t1.Sub(t0))
		stops = append(stops, time.Since(t1))
	}
	b.ReportMetric(median(starts).Seconds(), "start-s/median")
	b.ReportMetric(slices.Max(starts).Seconds(), "start-s/max")
	b.ReportMetric(median(stops).Seconds(), "stop-s/median")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
