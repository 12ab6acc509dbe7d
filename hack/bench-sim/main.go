// Command bench-sim runs bin/gpusim (the command contract) on the default
// openb trace with seed 42 for bestfit, fgd and gpufleet, and prints
//
//	sim trace=default seed=42 bestfit_130=X fgd_130=Y gpufleet_130=Z gpufleet_wall_s=W
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

type result struct {
	Policy      string    `json:"policy"`
	AllocPct    []float64 `json:"alloc_pct"`
	WallSeconds float64   `json:"wall_seconds"`
	PodsFailed  int       `json:"pods_failed"`
}

func main() {
	gpusim := flag.String("gpusim", "bin/gpusim", "gpusim binary")
	dir := flag.String("traces", "../shared/traces/openb", "folder of the openb CSVs")
	seed := flag.Int("seed", 42, "seed")
	flag.Parse()
	res := map[string]result{}
	for _, policy := range []string{"bestfit", "fgd", "gpufleet"} {
		out, err := exec.Command(*gpusim, "--nodes", filepath.Join(*dir, "openb_node_list_gpu_node.csv"),
			"--pods", filepath.Join(*dir, "openb_pod_list_default.csv"), "--policy", policy,
			"--seed", fmt.Sprint(*seed), "--inflation", "1.3", "--json").Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench-sim: gpusim --policy %s: %v\n", policy, err)
			os.Exit(1)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil || len(r.AllocPct) != 131 {
			fmt.Fprintf(os.Stderr, "bench-sim: gpusim --policy %s printed no valid result (%v): %s\n", policy, err, out)
			os.Exit(1)
		}
		fmt.Printf("%-9s alloc@100=%.2f%% alloc@130=%.2f%% failed=%d wall=%.1fs\n", policy, r.AllocPct[100], r.AllocPct[130], r.PodsFailed, r.WallSeconds)
		res[policy] = r
	}
	fmt.Printf("sim trace=default seed=%d bestfit_130=%.2f fgd_130=%.2f gpufleet_130=%.2f gpufleet_wall_s=%.1f\n",
		*seed, res["bestfit"].AllocPct[130], res["fgd"].AllocPct[130], res["gpufleet"].AllocPct[130], res["gpufleet"].WallSeconds)
}
