// Command sim-paper runs gpusim's policies over the openb pod lists and
// seeds and compares the mean GPU allocation at 100 % and 130 % arrived
// workload with the FGD paper's own per-seed results
// (../shared/traces/openb/fgd_paper_allo_discrete.csv). It prints a
// markdown table (docs/gpusim.md holds the last one).
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/sim"
)

// paperPolicy is the paper's name of each of gpusim's policies.
var paperPolicy = map[string]string{
	"random": "01-Random", "dotprod": "02-DotProd", "gpuclustering": "03-GpuClustering",
	"gpupacking": "04-GpuPacking", "bestfit": "05-BestFit", "fgd": "06-FGD",
}

func main() {
	traceDir := flag.String("traces", "../shared/traces/openb", "folder of the openb CSVs and the paper's results")
	lists := flag.String("pods", "default,cpu050,gpushare40,gpuspec10,multigpu20", "pod lists (openb_pod_list_NAME.csv)")
	policies := flag.String("policies", "bestfit,fgd,gpufleet", "policies")
	first := flag.Int("seed", 42, "first seed")
	seeds := flag.Int("seeds", 10, "number of seeds")
	jobs := flag.Int("jobs", 2, "runs in parallel")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	if err := run(*traceDir, strings.Split(*lists, ","), strings.Split(*policies, ","), *first, *seeds, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "sim-paper:", err)
		os.Exit(1)
	}
}

type key struct{ list, policy string }

func run(dir string, lists, policies []string, first, seeds, jobs int) error {
	nodes, err := sim.ReadNodesFile(filepath.Join(dir, "openb_node_list_gpu_node.csv"))
	if err != nil {
		return err
	}
	paper, err := readPaper(filepath.Join(dir, "fgd_paper_allo_discrete.csv"))
	if err != nil {
		return err
	}
	var mu sync.Mutex
	ours := map[key][]*sim.Result{}
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(jobs)
	for _, list := range lists {
		pods, err := sim.ReadPodsFile(filepath.Join(dir, "openb_pod_list_"+list+".csv"))
		if err != nil {
			return err
		}
		for _, policy := range policies {
			for seed := first; seed < first+seeds; seed++ {
				g.Go(func() error {
					res, err := sim.Experiment(ctx, nodes, pods, policy, uint64(seed), 1.3)
					if err != nil {
						return fmt.Errorf("%s %s seed %d: %w", list, policy, seed, err)
					}
					fmt.Fprintf(os.Stderr, "%s %s seed %d: %.2f %.2f (%.1f s)\n", list, policy, seed, res.AllocPct[100], res.AllocPct[130], res.WallSeconds)
					mu.Lock()
					ours[key{list, policy}] = append(ours[key{list, policy}], res)
					mu.Unlock()
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("GPU allocation %% at 100 %% and 130 %% arrived workload, mean of seeds %d..%d (paper: its own published runs, same seeds).\n\n", first, first+seeds-1)
	fmt.Println("| pod list | policy | ours @100 | paper @100 | diff | ours @130 | paper @130 | diff | GPUs unallocated @130 (ours) | mean wall s |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, list := range lists {
		for _, policy := range policies {
			rs := ours[key{list, policy}]
			a100, a130, wall := mean(rs, func(r *sim.Result) float64 { return r.AllocPct[100] }), mean(rs, func(r *sim.Result) float64 { return r.AllocPct[130] }), mean(rs, func(r *sim.Result) float64 { return r.WallSeconds })
			total := float64(rs[0].TotalGPUs)
			row := fmt.Sprintf("| %s | %s | %.2f | ", list, policy, a100)
			if p, ok := paper[key{"openb_pod_list_" + list, paperPolicy[policy]}]; ok {
				row += fmt.Sprintf("%.2f | %+.2f | %.2f | %.2f | %+.2f |", p[0], a100-p[0], a130, p[1], a130-p[1])
			} else {
				row += fmt.Sprintf("- | - | %.2f | - | - |", a130)
			}
			fmt.Printf("%s %.0f | %.1f |\n", row, total*(100-a130)/100, wall)
		}
	}
	return nil
}

func mean(rs []*sim.Result, f func(*sim.Result) float64) float64 {
	var s float64
	for _, r := range rs {
		s += f(r)
	}
	return s / float64(len(rs))
}

// readPaper returns the paper's mean allocation at 100 and 130 % per pod
// list and policy.
func readPaper(path string) (map[key][2]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: no results", path)
	}
	col100, col130 := slices.Index(rows[0], "100"), slices.Index(rows[0], "130")
	if col100 < 0 || col130 < 0 {
		return nil, fmt.Errorf("%s: no columns 100 and 130", path)
	}
	sums := map[key][3]float64{}
	for i, r := range rows[1:] {
		v100, err1 := strconv.ParseFloat(r[col100], 64)
		v130, err2 := strconv.ParseFloat(r[col130], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: allocation is not a number", path, i+2)
		}
		k := key{r[0], r[1]}
		s := sums[k]
		sums[k] = [3]float64{s[0] + v100, s[1] + v130, s[2] + 1}
	}
	out := map[key][2]float64{}
	for k, s := range sums {
		out[k] = [2]float64{s[0] / s[2], s[1] / s[2]}
	}
	return out, nil
}
