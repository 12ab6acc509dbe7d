package gpupack

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The seed inputs of these fuzzers are in testdata/fuzz/<FuzzName>/.

// maxFuzzGPUs bounds the GPU count the fuzzers pass (the topology matrix is
// gpuCount squared).
const maxFuzzGPUs = 64

func FuzzParseModels(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		models, err := ParseModels(v)
		if err != nil {
			if models != nil {
				t.Errorf("ParseModels(%q) returned models %q with error %v", v, models, err)
			}
			return
		}
		if len(models) == 0 {
			t.Fatalf("ParseModels(%q) returned no models and no error", v)
		}
		for i, m := range models {
			if m == "" || strings.TrimSpace(m) != m {
				t.Errorf("ParseModels(%q)[%d] = %q: empty or untrimmed", v, i, m)
			}
			if strings.ContainsFunc(m, func(c rune) bool {
				return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
			}) {
				t.Errorf("ParseModels(%q)[%d] = %q has a character outside [A-Za-z0-9._-]", v, i, m)
			}
			if slices.Index(models, m) != i {
				t.Errorf("ParseModels(%q) = %q lists %q twice", v, models, m)
			}
			if !strings.Contains(v, m) {
				t.Errorf("ParseModels(%q) invented model %q", v, m)
			}
		}
		again, err := ParseModels(strings.Join(models, "|"))
		if err != nil || !slices.Equal(again, models) {
			t.Errorf("ParseModels(Join(ParseModels(%q))) = %q, %v; want %q", v, again, err, models)
		}
	})
}

func FuzzParseIndices(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string, gpuCount int) {
		gpus, err := ParseIndices(v, gpuCount)
		if err != nil {
			return
		}
		if len(gpus) != strings.Count(v, ",")+1 {
			t.Errorf("ParseIndices(%q, %d) = %v: want one index per comma-separated element", v, gpuCount, gpus)
		}
		for i, g := range gpus {
			if g < 0 || g >= gpuCount {
				t.Errorf("ParseIndices(%q, %d) = %v: index %d out of range", v, gpuCount, gpus, g)
			}
			if slices.Index(gpus, g) != i {
				t.Errorf("ParseIndices(%q, %d) = %v: index %d twice", v, gpuCount, gpus, g)
			}
		}
		s := FormatIndices(gpus)
		again, err := ParseIndices(s, gpuCount)
		if err != nil || !slices.Equal(again, gpus) {
			t.Errorf("ParseIndices(FormatIndices(%v)=%q, %d) = %v, %v; want %v", gpus, s, gpuCount, again, err, gpus)
		}
		if s2 := FormatIndices(again); s2 != s {
			t.Errorf("FormatIndices is not stable: %q then %q", s, s2)
		}
	})
}

func FuzzParseTopology(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string, count uint8) {
		gpuCount := int(count) % (maxFuzzGPUs + 1)
		links, err := ParseTopology(v, gpuCount)
		if err != nil {
			if links != nil {
				t.Errorf("ParseTopology(%q, %d) returned links with error %v", v, gpuCount, err)
			}
			return
		}
		if len(links) != gpuCount {
			t.Fatalf("ParseTopology(%q, %d) has %d rows", v, gpuCount, len(links))
		}
		for i := range links {
			if len(links[i]) != gpuCount {
				t.Fatalf("ParseTopology(%q, %d) row %d has %d columns", v, gpuCount, i, len(links[i]))
			}
			if links[i][i] != 0 {
				t.Errorf("ParseTopology(%q, %d)[%d][%d] = %d, want 0", v, gpuCount, i, i, links[i][i])
			}
			for j := range links[i] {
				if links[i][j] != links[j][i] {
					t.Errorf("ParseTopology(%q, %d) not symmetric: [%d][%d]=%d, [%d][%d]=%d", v, gpuCount, i, j, links[i][j], j, i, links[j][i])
				}
				if links[i][j] < 0 {
					t.Errorf("ParseTopology(%q, %d)[%d][%d] = %d, want >= 0", v, gpuCount, i, j, links[i][j])
				}
			}
		}
		// Written back as entries i-j:n (i < j, n > 0), the matrix reads
		// the same.
		var entries []string
		for i := range links {
			for j := i + 1; j < gpuCount; j++ {
				if links[i][j] > 0 {
					entries = append(entries, strconv.Itoa(i)+"-"+strconv.Itoa(j)+":"+strconv.Itoa(links[i][j]))
				}
			}
		}
		if len(entries) > 0 {
			again, err := ParseTopology(strings.Join(entries, ","), gpuCount)
			if err != nil {
				t.Fatalf("ParseTopology(%q) of the links of %q: %v", strings.Join(entries, ","), v, err)
			}
			if diff := cmp.Diff(links, again); diff != "" {
				t.Errorf("ParseTopology round trip of %q mismatch (-first +second):\n%s", v, diff)
			}
		}
		if gpuCount > 1 {
			// The ledger hands the matrix to WholeGPUs, which must pick
			// distinct GPUs from it.
			free := make([]int64, gpuCount)
			for i := range free {
				free[i] = MilliPerGPU
			}
			n := &Node{Free: free, Links: links}
			got := n.WholeGPUs(2)
			if len(got) != 2 || got[0] == got[1] {
				t.Errorf("WholeGPUs(2) on topology %q = %v, want two distinct GPUs", v, got)
			}
		}
	})
}
