package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// ReferenceFile is a version's reference statistics, beside its weights.
const ReferenceFile = "reference.json"

// Limits of a reference file: drift statistics must stay small.
const (
	maxReferenceBins    = 64
	maxReferenceColumns = 1024
	maxReferenceBytes   = 4 << 20
)

// Reference are the distributions of a version's training inputs and
// outputs: per column, bin edges and the share of training rows in each
// bin. The server compares live traffic with them (drift). Bin 0 holds
// values <= Edges[0], bin i values in (Edges[i-1], Edges[i]], the last bin
// values > the last edge.
type Reference struct {
	// Inputs describe the input features, in input order (at most the
	// model's input width: the first len(Inputs) features are tracked).
	Inputs []ColumnReference `json:"inputs"`
	// Outputs describe the model's outputs, in output order.
	Outputs []ColumnReference `json:"outputs"`
}

// ColumnReference is one column's training distribution.
type ColumnReference struct {
	Name     string    `json:"name"`
	Edges    []float64 `json:"edges"`
	Expected []float64 `json:"expected"`
}

// Bin is the bin of v.
func (c *ColumnReference) Bin(v float64) int {
	i, _ := slices.BinarySearch(c.Edges, v)
	return i
}

// ParseReference decodes reference statistics strictly and checks them
// against a model taking in values and giving out values.
func ParseReference(data []byte, in, out int) (*Reference, error) {
	if len(data) > maxReferenceBytes {
		return nil, fmt.Errorf("%d bytes is over the %d-byte limit", len(data), maxReferenceBytes)
	}
	var r Reference
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("not reference statistics (JSON with inputs and outputs): %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	var errs []error
	if len(r.Inputs) == 0 || len(r.Inputs) > in || len(r.Inputs) > maxReferenceColumns {
		errs = append(errs, fmt.Errorf("%d input columns, want 1 to %d (the model takes %d values)", len(r.Inputs), min(in, maxReferenceColumns), in))
	}
	if len(r.Outputs) > out || len(r.Outputs) > maxReferenceColumns {
		errs = append(errs, fmt.Errorf("%d output columns, want at most %d (the model gives %d values)", len(r.Outputs), min(out, maxReferenceColumns), out))
	}
	for kind, cols := range map[string][]ColumnReference{"inputs": r.Inputs, "outputs": r.Outputs} {
		for i, c := range cols {
			if err := c.validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d] (%s): %w", kind, i, c.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

func (c *ColumnReference) validate() error {
	switch {
	case c.Name == "":
		return errors.New("no name")
	case len(c.Edges) == 0 || len(c.Edges)+1 > maxReferenceBins:
		return fmt.Errorf("%d edges, want 1 to %d", len(c.Edges), maxReferenceBins-1)
	case len(c.Expected) != len(c.Edges)+1:
		return fmt.Errorf("%d expected shares for %d edges, want %d (one per bin)", len(c.Expected), len(c.Edges), len(c.Edges)+1)
	}
	for i, e := range c.Edges {
		if math.IsNaN(e) || math.IsInf(e, 0) || i > 0 && e <= c.Edges[i-1] {
			return fmt.Errorf("edges must be finite and strictly increasing: edge %d is %v", i, e)
		}
	}
	sum := 0.0
	for i, p := range c.Expected {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("expected share %d is %v, want 0..1", i, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-3 {
		return fmt.Errorf("expected shares sum to %v, want 1", sum)
	}
	return nil
}

// loadReference reads dir's reference statistics, if any (nil without a
// file).
func loadReference(dir string, in, out int) (*Reference, error) {
	path := filepath.Join(dir, ReferenceFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := ParseReference(data, in, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
