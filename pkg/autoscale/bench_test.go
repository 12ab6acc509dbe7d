package autoscale

import (
	"math"
	"testing"
	"time"

	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// BenchmarkReplay14Days replays 14 days at one-second resolution (a daily
// cycle with a step every 10 minutes) per policy family.
func BenchmarkReplay14Days(b *testing.B) {
	rate := make([]float64, 14*86400)
	for i := range rate {
		w := i / 600
		rate[i] = 1900 + 700*math.Sin(2*math.Pi*float64(i)/86400) + float64((w*7919)%400) - 200
	}
	tr := &Trace{Name: "synthetic", Rate: rate, Step: 10}
	m := DefaultModel()
	m.ReplicaCapacity = 95
	for _, p := range []Policy{
		{Name: "prometheus", Pipeline: PrometheusPipeline(), Target: 70},
		{Name: "gpufleet", Pipeline: GpufleetPipeline(), Target: 70},
		{Name: "forecast", Pipeline: GpufleetPipeline(), Target: 70, Forecast: &ForecastPolicy{Config: forecast.DefaultConfig(), Horizon: 75 * time.Second, RecordPeriod: 10 * time.Second}},
	} {
		b.Run(p.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Replay(tr, m, p, ReplayOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(rate))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Msimulated_s/s")
		})
	}
}
