package deviceplugin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	testNode      = "gpu-node-1"
	testNamespace = "ml"
)

// v100Memory is a V100-SXM2-32GB's memory as NVML reports it (32510 MiB).
const v100Memory = 34089730048

// dgx1Links are the NVLinks between the eight V100s of a DGX-1 (nvidia-smi
// topo -m): two fully connected quads, 0-3 and 4-7, with one or two links
// per pair, and one or two links from each GPU to its twin in the other
// quad (0-4, 1-5, 2-6, 3-7). Each GPU has six.
var dgx1Links = [8][8]int{
	{0, 1, 1, 2, 2, 0, 0, 0},
	{1, 0, 2, 1, 0, 2, 0, 0},
	{1, 2, 0, 2, 0, 0, 1, 0},
	{2, 1, 2, 0, 0, 0, 0, 1},
	{2, 0, 0, 0, 0, 1, 1, 2},
	{0, 2, 0, 0, 1, 0, 2, 1},
	{0, 0, 1, 0, 1, 2, 0, 2},
	{0, 0, 0, 1, 2, 1, 2, 0},
}

// testUUID is GPU i's UUID, shaped like NVML's.
func testUUID(i int) string { return fmt.Sprintf("GPU-5a1c9e3f-7b2d-4e6a-8c0f-%012x", 0x3d10+i) }

// dgx1 returns the GPUs of a DGX-1.
func dgx1() []GPU {
	gpus := make([]GPU, 8)
	for i := range gpus {
		links := map[int]int{}
		for j, n := range dgx1Links[i] {
			if n > 0 {
				links[j] = n
			}
		}
		gpus[i] = GPU{Index: i, UUID: testUUID(i), MemoryBytes: v100Memory, Links: links}
	}
	return gpus
}

// milliIDs returns n milli IDs of GPU gpu, numbers from..from+n-1.
func milliIDs(gpu, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-m%03d", testUUID(gpu), from+i)
	}
	return out
}

// wholeIDs returns the nvidia.com/gpu IDs of GPUs.
func wholeIDs(gpus ...int) []string {
	out := make([]string, len(gpus))
	for i, g := range gpus {
		out[i] = testUUID(g)
	}
	return out
}

// gpuIndices returns the sorted distinct GPUs device IDs of resource are on
// (-1 for an ID of no test GPU).
func gpuIndices(resource string, ids []string) []int {
	var out []int
	for _, id := range ids {
		uuid := id
		if resource == ResourceMilli {
			if len(id) < 5 || id[len(id)-5:len(id)-3] != "-m" {
				uuid = ""
			} else {
				uuid = id[:len(id)-5]
			}
		}
		idx := -1
		for i := range 8 {
			if testUUID(i) == uuid {
				idx = i
			}
		}
		out = append(out, idx)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseIndices reads "0,3" into [0 3].
func parseIndices(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, p := range strings.Split(s, ",") {
		i, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("GPU indices %q: %v", s, err)
		}
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}
