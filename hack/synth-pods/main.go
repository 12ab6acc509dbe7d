// Command synth-pods writes synthetic pod lists in gpusim's trace format, to
// check a placement policy on workloads unlike the Alibaba traces it was
// designed on (docs/gpusim.md):
//
//   - uniform: 10 % CPU-only pods, 40 % one whole GPU, 3 % 2-8 whole GPUs,
//     47 % shares drawn uniformly from 100..950 milli-GPU in steps of 50.
//   - cpubound: 20 % CPU-only pods of 16 or 32 cores, 25 % one GPU with
//     8-24 cores, 55 % shares of 250-750 milli-GPU with 4-16 cores: on the
//     openb nodes CPU runs out with a third of the GPUs free.
//
// Usage: go run ./hack/synth-pods --kind uniform --pods 8000 --seed 1 > pods.csv
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	kind := flag.String("kind", "uniform", "uniform or cpubound")
	n := flag.Int("pods", 8000, "number of pods")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := write(os.Stdout, *kind, *n, rand.New(rand.NewPCG(*seed, 0))); err != nil {
		fmt.Fprintln(os.Stderr, "synth-pods:", err)
		os.Exit(1)
	}
}

// pod is one row: CPU cores, memory MiB, GPUs, milli-GPU per GPU.
type pod struct {
	cores, memMiB, gpus, milli int
}

func write(f *os.File, kind string, n int, r *rand.Rand) error {
	pick := func(xs ...int) int { return xs[r.IntN(len(xs))] }
	var gen func() pod
	switch kind {
	case "uniform":
		gen = func() pod {
			switch x := r.Float64(); {
			case x < 0.10:
				return pod{pick(4, 8, 16, 32), 8192, 0, 0}
			case x < 0.50:
				return pod{pick(4, 8, 12, 16), 16384, 1, 1000}
			case x < 0.53:
				return pod{pick(16, 32, 48), 65536, pick(2, 4, 8), 1000}
			default:
				return pod{pick(2, 4, 6, 8), 8192, 1, 100 + 50*r.IntN(18)}
			}
		}
	case "cpubound":
		gen = func() pod {
			switch x := r.Float64(); {
			case x < 0.20:
				return pod{pick(16, 32), 8192, 0, 0}
			case x < 0.45:
				return pod{pick(8, 16, 24), 16384, 1, 1000}
			default:
				return pod{pick(4, 8, 16), 8192, 1, pick(250, 300, 600, 700, 750)}
			}
		}
	default:
		return fmt.Errorf("unknown kind %q: use uniform or cpubound", kind)
	}
	w := csv.NewWriter(f)
	if err := w.Write([]string{"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"}); err != nil {
		return err
	}
	for i := range n {
		p := gen()
		if err := w.Write([]string{fmt.Sprintf("%s-%05d", kind, i), strconv.Itoa(p.cores * 1000), strconv.Itoa(p.memMiB), strconv.Itoa(p.gpus), strconv.Itoa(p.milli)}); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}
