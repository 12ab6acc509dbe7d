package kubectlgpufleet

import (
	"bytes"
	"testing"
)

func TestTopGolden(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	pods := []TopRow{
		{Namespace: "ml", Name: "property-value-a", Values: map[string]*float64{"gpu_utilization": f(0.634), "gpu_memory_used_bytes": f(3 << 30), "requests_per_second": f(41.26), "inference_queue_depth": f(2)}},
		{Namespace: "ml", Name: "trainer", Values: map[string]*float64{"gpu_utilization": f(0.97)}},
	}
	nodes := []TopRow{{Name: "v100-a", Values: map[string]*float64{"gpu_utilization": f(0.5), "gpu_memory_used_bytes": f(12 << 30)}}}
	var b bytes.Buffer
	for _, tc := range []struct {
		kind  string
		rows  []TopRow
		allNS bool
	}{{"pods", pods, false}, {"pods", pods, true}, {"nodes", nodes, false}} {
		if err := PrintTop(&b, tc.kind, tc.rows, tc.allNS); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
	}
	golden(t, "top.golden", b.String())
}
