package main

import (
	"encoding/json"
	"os"
	"slices"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// referenceBins is how many quantile bins each column gets (fewer where
// values repeat, as integer features do).
const referenceBins = 10

// writeReference writes the version's reference statistics
// (model.ReferenceFile): the training rows' distribution of every feature
// and of the model's prediction, for the server's drift metrics.
func writeReference(path string, net *mlp, x [][]float64) error {
	ref := model.Reference{}
	for j, name := range featureNames {
		col := make([]float64, len(x))
		for i, row := range x {
			col[i] = float64(float32(row[j])) // the server sees FP32 values
		}
		ref.Inputs = append(ref.Inputs, column(name, col))
	}
	pred := make([]float64, len(x))
	for i, row := range x {
		pred[i] = float64(float32(net.forward(row)[0]))
	}
	ref.Outputs = append(ref.Outputs, column("price_kusd", pred))
	data, err := json.MarshalIndent(ref, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// column bins values at their deciles (distinct edges only) and counts the
// share in each bin.
func column(name string, values []float64) model.ColumnReference {
	sorted := slices.Sorted(slices.Values(values))
	c := model.ColumnReference{Name: name}
	for k := 1; k < referenceBins; k++ {
		e := float64(float32(sorted[k*len(sorted)/referenceBins]))
		if (len(c.Edges) == 0 || e > c.Edges[len(c.Edges)-1]) && e < sorted[len(sorted)-1] {
			c.Edges = append(c.Edges, e)
		}
	}
	if len(c.Edges) == 0 { // a constant column
		c.Edges = []float64{sorted[0]}
	}
	c.Expected = make([]float64, len(c.Edges)+1)
	for _, v := range values {
		c.Expected[c.Bin(v)]++
	}
	for i := range c.Expected {
		c.Expected[i] /= float64(len(values))
	}
	return c
}
