package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNormalizeMinMax(t *testing.T) {
	tests := []struct {
		name   string
		scores []int64
		want   []int64
	}{
		{name: "none", scores: nil, want: nil},
		{name: "one", scores: []int64{37}, want: []int64{100}},
		{name: "all equal", scores: []int64{5, 5, 5}, want: []int64{100, 100, 100}},
		{name: "linear", scores: []int64{10, 30, 20}, want: []int64{0, 100, 50}},
		{name: "truncated", scores: []int64{0, 1, 3}, want: []int64{0, 33, 100}},
		{name: "negative raw scores", scores: []int64{-10, 0, 10}, want: []int64{0, 50, 100}},
	}
	for _, strategy := range []string{StrategyBestFit, StrategySpread} {
		s, err := NewStrategy(strategy)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(strategy+"/"+tt.name, func(t *testing.T) {
				s.Normalize(tt.scores)
				if diff := cmp.Diff(tt.want, tt.scores, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Normalize mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestNormalizeRank(t *testing.T) {
	tests := []struct {
		name   string
		scores []int64
		want   []int64
	}{
		{name: "none", scores: nil, want: nil},
		{name: "one", scores: []int64{-5 << 16}, want: []int64{100}},
		{name: "equal raw scores score equal", scores: []int64{5, 3, 5, 1}, want: []int64{100, 99, 100, 98}},
		{name: "rank, not distance", scores: []int64{1 << 40, 1, 0}, want: []int64{100, 99, 98}},
		{name: "negative raw scores", scores: []int64{-5, -1_000_000, 7}, want: []int64{99, 98, 100}},
	}
	s, err := NewStrategy(StrategyRandom)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Normalize(tt.scores)
			if diff := cmp.Diff(tt.want, tt.scores, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Normalize mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeRankManyNodes(t *testing.T) {
	// 150 distinct raw scores, given in reverse: the best 100 keep their
	// order as 100..1, the rest share 0.
	raw := make([]int64, 150)
	for i := range raw {
		raw[i] = int64(149-i) * 7
	}
	scores := append([]int64(nil), raw...)
	rank(scores)
	for i, got := range scores {
		v := 149 - i // raw[i]'s position among the distinct values
		want := max(0, int64(v-49))
		if got != want {
			t.Errorf("raw score %d (position %d of 150) normalized to %d, want %d", raw[i], v, got, want)
		}
		if got < 0 || got > MaxScore {
			t.Errorf("normalized score %d outside 0..%d", got, MaxScore)
		}
	}
}

func TestNormalizeFGDKeepsScores(t *testing.T) {
	s, err := NewStrategy(StrategyFGD)
	if err != nil {
		t.Fatal(err)
	}
	scores := []int64{45, 50, 62, 0}
	s.Normalize(scores)
	if diff := cmp.Diff([]int64{45, 50, 62, 0}, scores); diff != "" {
		t.Errorf("FGD Normalize changed scores (-want +got):\n%s", diff)
	}
}
