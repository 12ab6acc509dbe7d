package gpupack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIndices(t *testing.T) {
	tests := []struct {
		name     string
		v        string
		gpuCount int
		want     []int
		wantErr  string
	}{
		{name: "one GPU", v: "3", gpuCount: 4, want: []int{3}},
		{name: "several GPUs keep their order", v: "3,0,2", gpuCount: 4, want: []int{3, 0, 2}},
		{name: "spaces around indices", v: " 0 , 1", gpuCount: 2, want: []int{0, 1}},
		{name: "last GPU", v: "7", gpuCount: 8, want: []int{7}},
		{name: "empty", v: "", gpuCount: 4, wantErr: "gpufleet.io/gpu-indices is empty"},
		{name: "not a number", v: "0,x", gpuCount: 4, wantErr: `"x" is not a GPU index`},
		{name: "empty element", v: "0,,1", gpuCount: 4, wantErr: `"" is not a GPU index`},
		{name: "trailing comma", v: "0,", gpuCount: 4, wantErr: `"" is not a GPU index`},
		{name: "fraction", v: "1.5", gpuCount: 4, wantErr: `"1.5" is not a GPU index`},
		{name: "index equal to the GPU count", v: "4", gpuCount: 4, wantErr: "GPU 4 does not exist on a node with 4 GPUs"},
		{name: "negative index", v: "-1", gpuCount: 4, wantErr: "GPU -1 does not exist on a node with 4 GPUs"},
		{name: "node without GPUs", v: "0", gpuCount: 0, wantErr: "GPU 0 does not exist on a node with 0 GPUs"},
		{name: "duplicate", v: "1,2,1", gpuCount: 4, wantErr: "names GPU 1 twice"},
		{name: "duplicate spelled differently", v: "1, 01", gpuCount: 4, wantErr: "names GPU 1 twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIndices(tt.v, tt.gpuCount)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseIndices(%q, %d) = %v, %v; want error containing %q", tt.v, tt.gpuCount, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIndices(%q, %d) error: %v", tt.v, tt.gpuCount, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseIndices(%q, %d) mismatch (-want +got):\n%s", tt.v, tt.gpuCount, diff)
			}
		})
	}
}

func TestFormatIndices(t *testing.T) {
	tests := []struct {
		gpus []int
		want string
	}{
		{gpus: nil, want: ""},
		{gpus: []int{0}, want: "0"},
		{gpus: []int{3, 0, 12}, want: "3,0,12"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := FormatIndices(tt.gpus)
			if got != tt.want {
				t.Fatalf("FormatIndices(%v) = %q, want %q", tt.gpus, got, tt.want)
			}
			if len(tt.gpus) == 0 {
				return
			}
			back, err := ParseIndices(got, 16)
			if err != nil {
				t.Fatalf("ParseIndices(FormatIndices(%v)) error: %v", tt.gpus, err)
			}
			if diff := cmp.Diff(tt.gpus, back); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseModels(t *testing.T) {
	tests := []struct {
		name    string
		v       string
		want    []string
		wantErr string
	}{
		{name: "one model", v: "T4", want: []string{"T4"}},
		{name: "two models", v: "V100M16|V100M32", want: []string{"V100M16", "V100M32"}},
		{name: "repeats dropped, first order kept", v: "T4|A100|T4|A100|P100", want: []string{"T4", "A100", "P100"}},
		{name: "spaces trimmed, then deduped", v: "T4| T4 ", want: []string{"T4"}},
		{name: "allowed punctuation", v: "a-b_c.d|X9", want: []string{"a-b_c.d", "X9"}},
		{name: "empty", v: "", wantErr: "is empty"},
		{name: "blank", v: "  \t", wantErr: "is empty"},
		{name: "empty name in the middle", v: "V100M16||T4", wantErr: "empty model name"},
		{name: "leading separator", v: "|T4", wantErr: "empty model name"},
		{name: "blank name", v: "T4| |A10", wantErr: "empty model name"},
		{name: "comma instead of bar", v: "T4,A10", wantErr: `has the character ','`},
		{name: "space inside a name", v: "Tesla T4", wantErr: `has the character ' '`},
		{name: "non-ASCII letter", v: "Tésla", wantErr: `has the character 'é'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseModels(tt.v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseModels(%q) = %v, %v; want error containing %q", tt.v, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseModels(%q) error: %v", tt.v, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseModels(%q) mismatch (-want +got):\n%s", tt.v, diff)
			}
		})
	}
}
