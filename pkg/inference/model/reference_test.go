package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodReference = `{"inputs":[{"name":"a","edges":[1,2],"expected":[0.25,0.5,0.25]}],
 "outputs":[{"name":"y","edges":[0],"expected":[0.5,0.5]}]}`

func TestParseReference(t *testing.T) {
	r, err := ParseReference([]byte(goodReference), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Inputs[0]
	for v, want := range map[float64]int{0: 0, 1: 0, 1.5: 1, 2: 1, 2.1: 2} {
		if got := c.Bin(v); got != want {
			t.Errorf("Bin(%v) = %d, want %d", v, got, want)
		}
	}
	for _, tc := range []struct {
		json    string
		in, out int
		want    string
	}{
		{goodReference, 0, 1, "1 input columns, want 1 to 0"},
		{goodReference, 2, 0, "1 output columns, want at most 0"},
		{`{"inputs":[{"name":"a","edges":[2,1],"expected":[0.2,0.6,0.2]}]}`, 1, 1, "strictly increasing"},
		{`{"inputs":[{"name":"a","edges":[1],"expected":[0.2,0.6,0.2]}]}`, 1, 1, "3 expected shares for 1 edges"},
		{`{"inputs":[{"name":"a","edges":[1],"expected":[0.2,0.6]}]}`, 1, 1, "sum to 0.8"},
		{`{"inputs":[{"name":"a","edges":[1],"expected":[-0.2,1.2]}]}`, 1, 1, "expected share 0 is -0.2"},
		{`{"inputs":[{"name":"","edges":[1],"expected":[0.5,0.5]}]}`, 1, 1, "no name"},
		{`{"inputs":[{"name":"a","edges":[],"expected":[1]}]}`, 1, 1, "0 edges"},
		{`{"inputs":[{"name":"a","edges":[1],"expected":[0.5,0.5]}],"bins":3}`, 1, 1, `unknown field "bins"`},
		{`{"inputs":[]} {}`, 1, 1, "trailing data"},
		{`[1,2]`, 1, 1, "not reference statistics"},
	} {
		if _, err := ParseReference([]byte(tc.json), tc.in, tc.out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (in %d, out %d): error %v, want %q", tc.json, tc.in, tc.out, err, tc.want)
		}
	}
}

// A version whose reference statistics do not fit it does not load, and
// the error names the file; the shipped versions load theirs.
func TestReferenceAtLoad(t *testing.T) {
	models, err := Load(filepath.Join("..", "..", "..", "models"), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range models["property-value"].Versions {
		if v.Reference == nil || len(v.Reference.Inputs) != 8 || len(v.Reference.Outputs) != 1 {
			t.Errorf("version %s: reference %+v", v.Version, v.Reference)
		}
	}
	dir := t.TempDir()
	writeModel(t, dir, "m", goodConfig, "1") // 3 inputs
	col := `{"name":"a","edges":[1],"expected":[0.5,0.5]}`
	bad := `{"inputs":[` + strings.Repeat(col+",", 3) + col + `]}`
	path := filepath.Join(dir, "m", "1", ReferenceFile)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir, Defaults{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "4 input columns, want 1 to 3") {
		t.Errorf("error %v, want one naming %s and the column count", err, path)
	}
}

func FuzzParseReference(f *testing.F) {
	f.Add([]byte(goodReference))
	f.Add([]byte(`{"inputs":[{"name":"a","edges":[1e308,1.7e308],"expected":[0,0,1]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReference(data, 4, 2)
		if err != nil {
			return
		}
		for _, c := range append(r.Inputs, r.Outputs...) {
			if len(c.Expected) != len(c.Edges)+1 {
				t.Fatalf("accepted %d shares for %d edges", len(c.Expected), len(c.Edges))
			}
			for _, v := range []float64{-1e300, 0, 1e300} {
				if b := c.Bin(v); b < 0 || b >= len(c.Expected) {
					t.Fatalf("Bin(%v) = %d of %d bins", v, b, len(c.Expected))
				}
			}
		}
	})
}
