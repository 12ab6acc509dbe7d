package app

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/sim"
)

// podListName is the workload column: the pod list's file name without
// extension (openb_pod_list_default).
func podListName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}

// writeCSV writes the curves as the FGD paper's analysis files do:
// workload, sc_policy, tune, seed, total_gpus, then the value at 0..130 %.
func writeCSV(prefix, workload string, inflation float64, results []*sim.Result) error {
	for _, file := range []struct {
		suffix string
		values func(*sim.Result) []float64
	}{
		{"_allo_discrete.csv", func(r *sim.Result) []float64 { return r.AllocPct }},
		{"_frag_ratio_discrete.csv", func(r *sim.Result) []float64 { return r.FragRatioPct }},
	} {
		header := []string{"workload", "sc_policy", "tune", "seed", "total_gpus"}
		for x := range sim.GridPoints {
			header = append(header, strconv.Itoa(x))
		}
		rows := [][]string{header}
		for _, r := range results {
			row := []string{workload, r.Policy, strconv.FormatFloat(inflation, 'f', -1, 64), strconv.FormatUint(r.Seed, 10), strconv.Itoa(r.TotalGPUs)}
			for _, v := range file.values(r) {
				row = append(row, strconv.FormatFloat(v, 'f', 2, 64))
			}
			rows = append(rows, row)
		}
		f, err := os.Create(prefix + file.suffix)
		if err != nil {
			return err
		}
		w := csv.NewWriter(f)
		if err := w.WriteAll(rows); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
