package deviceplugin

import (
	"fmt"
	"slices"
	"testing"
)

// Pods that gpufleet's scheduler did not place have no gpu-indices
// annotation; the plugin then chooses: whole GPUs that share no GPU with a
// share and have the most NVLinks among them, shares on the fullest GPU
// that holds them (best fit), never on a GPU given out whole.

func TestWholeGPUsWithoutAnnotationAreAnNVLinkedSetWithoutShares(t *testing.T) {
	for _, tc := range []struct {
		name string
		// shared GPUs have a share in use; taken GPUs are given out whole.
		shared, taken []int
		size          int
	}{
		{name: "2 on an empty node", size: 2},
		{name: "3 on an empty node", size: 3},
		{name: "4 on an empty node", size: 4},
		{name: "8 on an empty node", size: 8},
		{name: "2 with GPUs 0 and 4 shared", shared: []int{0, 4}, size: 2},
		{name: "4 with the first quad shared", shared: []int{0, 1, 2, 3}, size: 4},
		{name: "2 beside whole GPUs and shares", shared: []int{1}, taken: []int{0, 3}, size: 2},
		{name: "2 beside whole GPUs", taken: []int{0, 1}, size: 2},
		{name: "4 with GPU 0 shared", shared: []int{0}, size: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			for _, g := range tc.shared {
				h.hold(newPod(fmt.Sprintf("notebook-%d", g)).app("main", ResourceMilli, 100).obj(), "main", ResourceMilli, milliIDs(g, 0, 100))
			}
			for _, g := range tc.taken {
				h.hold(newPod(fmt.Sprintf("trainer-%d", g)).app("main", ResourceWhole, 1).obj(), "main", ResourceWhole, wholeIDs(g))
			}

			pod := newPod("adhoc").app("main", ResourceWhole, int64(tc.size)).obj()
			allocs := h.mustAdmit(pod)
			got := gpuIndices(ResourceWhole, allocs["main"].preferred)

			var free []int
			for g := range 8 {
				if !slices.Contains(tc.shared, g) && !slices.Contains(tc.taken, g) {
					free = append(free, g)
				}
			}
			if len(got) != tc.size || len(allocs["main"].preferred) != tc.size {
				t.Fatalf("preferred %v (GPUs %v), want %d GPUs", allocs["main"].preferred, got, tc.size)
			}
			for _, g := range got {
				if !slices.Contains(free, g) {
					t.Errorf("preferred GPU %d, which is shared or taken (free: %v)", g, free)
				}
			}
			if !connected(got) {
				t.Errorf("preferred GPUs %v are not connected by NVLinks", got)
			}
			if best, bestSet := mostLinked(free, tc.size); links(got) != best {
				t.Errorf("preferred GPUs %v have %d NVLinks among them; %v have %d", got, links(got), bestSet, best)
			}
		})
	}
}

// links counts the NVLinks among gpus.
func links(gpus []int) int {
	n := 0
	for i, a := range gpus {
		for _, b := range gpus[i+1:] {
			n += dgx1Links[a][b]
		}
	}
	return n
}

// connected says whether NVLinks join gpus into one group.
func connected(gpus []int) bool {
	if len(gpus) == 0 {
		return true
	}
	reached := map[int]bool{gpus[0]: true}
	for changed := true; changed; {
		changed = false
		for _, a := range gpus {
			for _, b := range gpus {
				if reached[a] && !reached[b] && dgx1Links[a][b] > 0 {
					reached[b], changed = true, true
				}
			}
		}
	}
	return len(reached) == len(gpus)
}

// mostLinked returns the most NVLinks any size GPUs of free have among
// them, and such a set.
func mostLinked(free []int, size int) (int, []int) {
	best, bestSet := -1, []int(nil)
	var walk func(start int, set []int)
	walk = func(start int, set []int) {
		if len(set) == size {
			if n := links(set); n > best {
				best, bestSet = n, slices.Clone(set)
			}
			return
		}
		for i := start; i < len(free); i++ {
			walk(i+1, append(set, free[i]))
		}
	}
	walk(0, nil)
	return best, bestSet
}

func TestSharesWithoutAnnotationGoToTheFullestGPUThatHoldsThem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		held    []holding
		request int64
		want    int
	}{
		{
			name: "fullest GPU with room",
			held: []holding{
				{pod: "a", resource: ResourceMilli, ids: milliIDs(1, 0, 600)},
				{pod: "b", resource: ResourceMilli, ids: milliIDs(2, 0, 900)},
			},
			request: 250, want: 1,
		},
		{
			name: "exact fit",
			held: []holding{
				{pod: "a", resource: ResourceMilli, ids: milliIDs(1, 0, 600)},
				{pod: "b", resource: ResourceMilli, ids: milliIDs(2, 0, 900)},
			},
			request: 100, want: 2,
		},
		{
			name: "not on a GPU given out whole",
			held: []holding{
				{pod: "a", resource: ResourceMilli, ids: milliIDs(0, 0, 10)},
				{pod: "b", resource: ResourceMilli, ids: milliIDs(1, 0, 10)},
				{pod: "c", resource: ResourceMilli, ids: milliIDs(2, 0, 10)},
				{pod: "trainer", resource: ResourceWhole, ids: wholeIDs(3)},
			},
			request: 1000, want: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			for _, x := range tc.held {
				h.hold(newPod(x.pod).app("main", x.resource, int64(len(x.ids))).obj(), "main", x.resource, x.ids)
			}
			allocs := h.mustAdmit(newPod("adhoc").app("main", ResourceMilli, tc.request).obj())
			a := allocs["main"]
			if got := gpuIndices(ResourceMilli, a.preferred); len(a.preferred) != int(tc.request) || !slices.Equal(got, []int{tc.want}) {
				t.Errorf("preferred %d IDs on GPUs %v, want %d on GPU %d", len(a.preferred), got, tc.request, tc.want)
			}
		})
	}
}
