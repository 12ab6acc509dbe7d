package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

func TestParseCSV(t *testing.T) {
	s, err := ParseCSV(strings.NewReader("a, b ,y,kind\n1,2,3,x\n4,5,6.5,z\n"), []string{"y"}, []string{"kind"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 2 || s.Width != 2 || s.TargetWidth != 1 || strings.Join(s.Features, ",") != "a,b" {
		t.Fatalf("got %+v", s)
	}
	if got := s.Inputs; len(got) != 4 || got[0] != 1 || got[3] != 5 {
		t.Errorf("inputs %v", got)
	}
	if got := s.Targets; len(got) != 2 || got[1] != 6.5 {
		t.Errorf("targets %v", got)
	}
	if got := s.Groups["kind"]; len(got) != 2 || got[1] != "z" {
		t.Errorf("groups %v", got)
	}
}

// Every malformed set gets an error naming what is wrong and where.
func TestParseCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		targets   []string
		groups    []string
		want      []string
	}{
		{"empty", "", []string{"y"}, nil, []string{"empty"}},
		{"header only", "a,y\n", []string{"y"}, nil, []string{"no rows"}},
		{"no target named", "a,y\n1,2\n", nil, nil, []string{"--target"}},
		{"missing target", "a,b\n1,2\n", []string{"y"}, nil, []string{`no target column "y"`, "a, b"}},
		{"missing group", "a,y\n1,2\n", []string{"y"}, []string{"kind"}, []string{`no group column "kind"`}},
		{"target is group", "a,y\n1,2\n", []string{"y"}, []string{"y"}, []string{"both a target and a group"}},
		{"duplicate column", "a,a,y\n1,2,3\n", []string{"y"}, nil, []string{`column "a" twice`}},
		{"unnamed column", "a,,y\n1,2,3\n", []string{"y"}, nil, []string{"column 2 has no name"}},
		{"not a number", "a,y\n1,2\nx,3\n", []string{"y"}, nil, []string{"line 3", "column a", `"x"`}},
		{"NaN target", "a,y\n1,NaN\n", []string{"y"}, nil, []string{"line 2", "column y", "finite"}},
		{"infinite", "a,y\n+Inf,1\n", []string{"y"}, nil, []string{"finite"}},
		{"too big for FP32", "a,y\n1e300,1\n", []string{"y"}, nil, []string{"FP32"}},
		{"empty group", "a,y,g\n1,2,\n", []string{"y"}, []string{"g"}, []string{"line 2", "empty group"}},
		{"ragged row", "a,y\n1,2,3\n", []string{"y"}, nil, []string{"wrong number of fields"}},
		{"only targets", "y\n1\n", []string{"y"}, nil, []string{"no input columns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tc.csv), tc.targets, tc.groups)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestReadEvalSetSafetensors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ts map[string]model.Tensor) string {
		data, err := model.EncodeSafetensors(ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.safetensors", map[string]model.Tensor{
		"inputs":  {Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"targets": {Shape: []int{3}, Data: []float32{7, 8, 9}},
	})
	s, err := ReadEvalSet(good, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 3 || s.Width != 2 || s.TargetWidth != 1 || s.Targets[2] != 9 {
		t.Errorf("got %+v", s)
	}
	if _, err := ReadEvalSet(good, nil, []string{"kind"}); err == nil || !strings.Contains(err.Error(), "need a CSV") {
		t.Errorf("groups with safetensors: %v", err)
	}
	bad := write("bad.safetensors", map[string]model.Tensor{
		"inputs":  {Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"targets": {Shape: []int{2}, Data: []float32{7, 8}},
	})
	if _, err := ReadEvalSet(bad, nil, nil); err == nil || !strings.Contains(err.Error(), `"targets" of shape [3]`) {
		t.Errorf("mismatched rows: %v", err)
	}
	if _, err := ReadEvalSet(filepath.Join(dir, "set.parquet"), nil, nil); err == nil {
		t.Error("a missing file of an unknown format was read")
	}
	other := filepath.Join(dir, "set.tsv")
	if err := os.WriteFile(other, []byte("a\tb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEvalSet(other, []string{"b"}, nil); err == nil || !strings.Contains(err.Error(), "use .csv or .safetensors") {
		t.Errorf("unknown format: %v", err)
	}
}
