package gpupack

import "testing"

// BenchmarkScore is one Score call of each fragmentation-aware strategy on
// an 8-GPU node with partly used GPUs, for a share, against 30 typical
// shapes (the framework calls Score once per feasible node per pod).
func BenchmarkScore(b *testing.B) {
	var typical []TypicalPod
	for i := range 30 {
		r := Request{Milli: int64(50 + 30*i), CPU: int64(1000 + 500*(i%8))}
		if i%5 == 0 {
			r = Request{GPUs: 1 + i%4, CPU: 8000}
		}
		typical = append(typical, TypicalPod{Request: r, Weight: 1.0 / 30})
	}
	node := &Node{Name: "gpu-node-17", Model: "V100M16", ModelKnown: true, Free: []int64{1000, 190, 530, 1000, 0, 60, 700, 1000}, CPUFree: 40000}
	for _, name := range []string{StrategyFGD, StrategyGPUFleet} {
		b.Run(name, func(b *testing.B) {
			s, err := NewStrategy(name)
			if err != nil {
				b.Fatal(err)
			}
			c := &Cluster{Typical: typical, MaxCPU: 96000, MaxGPUMilli: 8000, waste: newWasteModel(typical)}
			for b.Loop() {
				s.Score(c, node, share(470))
			}
		})
	}
	b.Run("wasteModel", func(b *testing.B) {
		for b.Loop() {
			newWasteModel(typical)
		}
	})
}
