package gpupack

import (
	"math/bits"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// linkSum is the number of NVLinks among set.
func linkSum(links [][]int, set []int) int {
	s := 0
	for a := range set {
		for b := a + 1; b < len(set); b++ {
			s += links[set[a]][set[b]]
		}
	}
	return s
}

// maxLinkSum is the most NVLinks any count of the free GPUs have among them,
// found by trying every subset.
func maxLinkSum(links [][]int, free []int64, count int) int {
	best := -1
	for mask := uint(0); mask < 1<<len(free); mask++ {
		if bits.OnesCount(mask) != count {
			continue
		}
		var set []int
		for i := range free {
			if mask&(1<<i) != 0 {
				if free[i] < MilliPerGPU {
					set = nil
					break
				}
				set = append(set, i)
			}
		}
		if set != nil {
			best = max(best, linkSum(links, set))
		}
	}
	return best
}

func TestWholeGPUsDGX1(t *testing.T) {
	links := dgx1Links(t)
	full := []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}
	tests := []struct {
		name  string
		free  []int64
		count int
		want  []int
	}{
		{name: "fully connected quad on an empty node", free: full, count: 4, want: []int{0, 1, 2, 3}},
		{name: "other quad when GPU 0 is busy", free: []int64{0, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, count: 4, want: []int{4, 5, 6, 7}},
		{name: "other quad when GPU 2 is partly used", free: []int64{1000, 1000, 999, 1000, 1000, 1000, 1000, 1000}, count: 4, want: []int{4, 5, 6, 7}},
		{name: "double-linked pair", free: full, count: 2, want: []int{0, 3}},
		{name: "triangle with most links", free: full, count: 3, want: []int{0, 2, 3}},
		{name: "whole node", free: full, count: 8, want: []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{name: "one GPU is the lowest free", free: []int64{500, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, count: 1, want: []int{1}},
		{name: "too few free GPUs", free: []int64{1000, 1000, 1000, 0, 1000, 1000, 1000, 1000}, count: 8, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := gpuNode(tt.free...)
			n.Links = links
			got := n.WholeGPUs(tt.count)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("WholeGPUs(%d) mismatch (-want +got):\n%s", tt.count, diff)
			}
			if got == nil {
				return
			}
			if s, best := linkSum(links, got), maxLinkSum(links, tt.free, tt.count); s != best {
				t.Errorf("WholeGPUs(%d) = %v has %d NVLinks, the best set has %d", tt.count, got, s, best)
			}
		})
	}
}

func TestWholeGPUsDGX1QuadIsFullyConnected(t *testing.T) {
	links := dgx1Links(t)
	n := gpuNode(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000)
	n.Links = links
	got := n.WholeGPUs(4)
	if s := linkSum(links, got); s != 9 {
		t.Errorf("WholeGPUs(4) = %v has %d NVLinks, want 9 (a DGX-1 quad)", got, s)
	}
	for a := range got {
		for b := a + 1; b < len(got); b++ {
			if links[got[a]][got[b]] == 0 {
				t.Errorf("WholeGPUs(4) = %v: GPUs %d and %d have no NVLink", got, got[a], got[b])
			}
		}
	}
}

func TestWholeGPUsWithoutTopology(t *testing.T) {
	tests := []struct {
		name  string
		free  []int64
		count int
		want  []int
	}{
		{name: "lowest free indices", free: []int64{1000, 0, 1000, 1000, 1000}, count: 3, want: []int{0, 2, 3}},
		{name: "partly used GPUs are skipped", free: []int64{999, 1000, 500, 1000}, count: 2, want: []int{1, 3}},
		{name: "too few", free: []int64{1000, 999}, count: 2, want: nil},
		{name: "no GPUs", free: nil, count: 1, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gpuNode(tt.free...).WholeGPUs(tt.count)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("WholeGPUs(%d) on %v mismatch (-want +got):\n%s", tt.count, tt.free, diff)
			}
		})
	}
}

// zeroLinks is a gpus x gpus link matrix without links.
func zeroLinks(gpus int) [][]int {
	links := make([][]int, gpus)
	for i := range links {
		links[i] = make([]int, gpus)
	}
	return links
}

func TestBestConnectedGreedy(t *testing.T) {
	// 16 GPUs: 8..11 fully connected by three links each, 0-1 by one;
	// more than 12 candidates, so the greedy search runs.
	links := zeroLinks(16)
	link := func(a, b, n int) { links[a][b], links[b][a] = n, n }
	link(0, 1, 1)
	for a := 8; a < 12; a++ {
		for b := a + 1; b < 12; b++ {
			link(a, b, 3)
		}
	}
	free := make([]int64, 16)
	for i := range free {
		free[i] = MilliPerGPU
	}
	free[2] = 0 // 15 candidates
	n := gpuNode(free...)
	n.Links = links
	if diff := cmp.Diff([]int{8, 9, 10, 11}, n.WholeGPUs(4)); diff != "" {
		t.Errorf("WholeGPUs(4) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{8, 9}, n.WholeGPUs(2)); diff != "" {
		t.Errorf("WholeGPUs(2) mismatch (-want +got):\n%s", diff)
	}
}

func TestBestConnectedGreedyReturnsDistinctCandidates(t *testing.T) {
	cands := []int{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27}
	for _, count := range []int{1, 2, 5, 13, 14} {
		got := bestConnected(cands, count, zeroLinks(28))
		if len(got) != count {
			t.Fatalf("bestConnected(%d of %d) returned %d GPUs: %v", count, len(cands), len(got), got)
		}
		seen := map[int]bool{}
		for _, g := range got {
			if seen[g] || g%2 != 1 || g > 27 {
				t.Errorf("bestConnected(%d) = %v: %d is repeated or not a candidate", count, got, g)
			}
			seen[g] = true
		}
		// Without links, every set ties: the lowest candidates win.
		if diff := cmp.Diff(cands[:count], got); diff != "" {
			t.Errorf("bestConnected(%d) without links mismatch (-want +got):\n%s", count, diff)
		}
	}
}

func TestParseTopology(t *testing.T) {
	got, err := ParseTopology(" 0-1:2, 3-0:1 ,1-2:0", 4)
	if err != nil {
		t.Fatalf("ParseTopology error: %v", err)
	}
	want := [][]int{
		{0, 2, 0, 1},
		{2, 0, 0, 0},
		{0, 0, 0, 0},
		{1, 0, 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTopology mismatch (-want +got):\n%s", diff)
	}

	links := dgx1Links(t)
	for i := range links {
		sum := 0
		for j := range links[i] {
			sum += links[i][j]
		}
		if sum != 6 {
			t.Errorf("DGX-1 GPU %d has %d NVLinks, want 6", i, sum)
		}
	}
}

func TestParseTopologyErrors(t *testing.T) {
	tests := []struct {
		name     string
		v        string
		gpuCount int
		wantErr  string
	}{
		{name: "empty", v: "", gpuCount: 2, wantErr: "is not of the form i-j:n"},
		{name: "no link count", v: "0-1", gpuCount: 2, wantErr: `"0-1" is not of the form i-j:n`},
		{name: "no pair", v: "01:2", gpuCount: 2, wantErr: `"01:2" is not of the form i-j:n`},
		{name: "trailing comma", v: "0-1:2,", gpuCount: 2, wantErr: `"" is not of the form`},
		{name: "letters", v: "a-1:2", gpuCount: 2, wantErr: "non-negative integers"},
		{name: "negative link count", v: "0-1:-1", gpuCount: 2, wantErr: "non-negative integers"},
		{name: "negative GPU", v: "-1-0:1", gpuCount: 2, wantErr: "non-negative integers"},
		{name: "GPU past the end", v: "0-1:1,1-4:1", gpuCount: 4, wantErr: `"1-4:1" names a GPU pair that does not exist on a node with 4 GPUs`},
		{name: "GPU linked to itself", v: "2-2:1", gpuCount: 4, wantErr: `"2-2:1" names a GPU pair`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTopology(tt.v, tt.gpuCount)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTopology(%q, %d) = %v, %v; want error containing %q", tt.v, tt.gpuCount, got, err, tt.wantErr)
			}
		})
	}
}
