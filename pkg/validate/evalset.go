package validate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// EvalSet is a labelled evaluation set: Rows inputs of Width features
// (row-major), their Targets (TargetWidth values per row), and optional
// group columns (one string per row) for bias checks.
type EvalSet struct {
	Rows, Width, TargetWidth int
	Features                 []string // column names of the inputs (CSV)
	Inputs                   []float32
	Targets                  []float64
	Groups                   map[string][]string
}

// maxRows bounds an evaluation set: a gate, not a training run.
const maxRows = 1 << 22

// ReadEvalSet reads path: a CSV file (.csv) or safetensors (.safetensors).
// targets names the target columns of a CSV; groups its group columns;
// every other column is an input feature, in file order.
func ReadEvalSet(path string, targets, groups []string) (*EvalSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("evaluation set: %w", err)
	}
	var s *EvalSet
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		s, err = ParseCSV(strings.NewReader(string(data)), targets, groups)
	case ".safetensors":
		if len(groups) > 0 {
			return nil, fmt.Errorf("evaluation set %s: group columns (%s) need a CSV evaluation set; safetensors holds numbers only", path, strings.Join(groups, ", "))
		}
		s, err = ParseSafetensorsSet(data)
	default:
		return nil, fmt.Errorf("evaluation set %s: unknown format %q: use .csv or .safetensors", path, filepath.Ext(path))
	}
	if err != nil {
		return nil, fmt.Errorf("evaluation set %s: %w", path, err)
	}
	return s, nil
}

// ParseCSV reads a CSV evaluation set with a header line. Every value of an
// input or target column must be a finite number; the error names the line
// and the column.
func ParseCSV(r io.Reader, targets, groups []string) (*EvalSet, error) {
	if len(targets) == 0 {
		return nil, errors.New("no target column named: say which column holds the labels (--target)")
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty: want a header line and at least one row")
	}
	if err != nil {
		return nil, err
	}
	header = slices.Clone(header)
	for i, h := range header {
		header[i] = strings.TrimSpace(h)
		if header[i] == "" {
			return nil, fmt.Errorf("header column %d has no name", i+1)
		}
		if slices.Contains(header[:i], header[i]) {
			return nil, fmt.Errorf("header names column %q twice", header[i])
		}
	}
	col := func(name string) int { return slices.Index(header, name) }
	var targetCols, groupCols, featureCols []int
	for _, t := range targets {
		i := col(t)
		if i < 0 {
			return nil, fmt.Errorf("no target column %q (columns: %s)", t, strings.Join(header, ", "))
		}
		targetCols = append(targetCols, i)
	}
	for _, g := range groups {
		i := col(g)
		if i < 0 {
			return nil, fmt.Errorf("no group column %q (columns: %s)", g, strings.Join(header, ", "))
		}
		if slices.Contains(targetCols, i) {
			return nil, fmt.Errorf("column %q is both a target and a group", g)
		}
		groupCols = append(groupCols, i)
	}
	s := &EvalSet{TargetWidth: len(targets), Groups: map[string][]string{}}
	for i, h := range header {
		if !slices.Contains(targetCols, i) && !slices.Contains(groupCols, i) {
			featureCols = append(featureCols, i)
			s.Features = append(s.Features, h)
		}
	}
	if len(featureCols) == 0 {
		return nil, errors.New("no input columns: every column is a target or a group")
	}
	s.Width = len(featureCols)
	num := func(rec []string, line, c int) (float64, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[c]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			hint := ""
			if err != nil && !slices.Contains(targetCols, c) {
				hint = " (if it is a column of group labels, name it with --group-by)"
			}
			return 0, fmt.Errorf("line %d, column %s: %q is not a finite number%s", line, header[c], rec[c], hint)
		}
		return v, nil
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if s.Rows >= maxRows {
			return nil, fmt.Errorf("more than %d rows", maxRows)
		}
		for _, c := range featureCols {
			v, err := num(rec, line, c)
			if err != nil {
				return nil, err
			}
			if math.Abs(v) > math.MaxFloat32 {
				return nil, fmt.Errorf("line %d, column %s: %q does not fit the model's FP32 inputs", line, header[c], rec[c])
			}
			s.Inputs = append(s.Inputs, float32(v))
		}
		for _, c := range targetCols {
			v, err := num(rec, line, c)
			if err != nil {
				return nil, err
			}
			s.Targets = append(s.Targets, v)
		}
		for k, c := range groupCols {
			v := strings.TrimSpace(rec[c])
			if v == "" {
				return nil, fmt.Errorf("line %d, column %s: empty group", line, header[c])
			}
			s.Groups[groups[k]] = append(s.Groups[groups[k]], v)
		}
		s.Rows++
	}
	if s.Rows == 0 {
		return nil, errors.New("no rows after the header")
	}
	return s, nil
}

// ParseSafetensorsSet reads an evaluation set from safetensors: tensor
// "inputs" of shape [rows, width] and "targets" of shape [rows] or [rows, k].
func ParseSafetensorsSet(data []byte) (*EvalSet, error) {
	ts, err := model.ParseSafetensors(data)
	if err != nil {
		return nil, err
	}
	in, ok := ts["inputs"]
	if !ok || len(in.Shape) != 2 || in.Shape[0] < 1 || in.Shape[1] < 1 {
		return nil, fmt.Errorf("want a tensor \"inputs\" of shape [rows, width], got %v", shapeOf(ts, "inputs"))
	}
	tg, ok := ts["targets"]
	if !ok || len(tg.Shape) < 1 || len(tg.Shape) > 2 || tg.Shape[0] != in.Shape[0] || len(tg.Shape) == 2 && tg.Shape[1] < 1 {
		return nil, fmt.Errorf("want a tensor \"targets\" of shape [%d] or [%d, k], got %v", in.Shape[0], in.Shape[0], shapeOf(ts, "targets"))
	}
	if in.Shape[0] > maxRows {
		return nil, fmt.Errorf("more than %d rows", maxRows)
	}
	s := &EvalSet{Rows: in.Shape[0], Width: in.Shape[1], TargetWidth: 1, Inputs: in.Data, Groups: map[string][]string{}}
	if len(tg.Shape) == 2 {
		s.TargetWidth = tg.Shape[1]
	}
	for _, v := range append(slices.Clone(in.Data), tg.Data...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("a value is NaN or infinite")
		}
	}
	for _, v := range tg.Data {
		s.Targets = append(s.Targets, float64(v))
	}
	return s, nil
}

func shapeOf(ts map[string]model.Tensor, name string) any {
	if t, ok := ts[name]; ok {
		return t.Shape
	}
	return "no such tensor"
}
