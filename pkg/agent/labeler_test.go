package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/nvml"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
)

func dgx1Inventory(t *testing.T) Inventory {
	t.Helper()
	node, err := sim.New(sim.Options{NodeName: "dgx"})
	if err != nil {
		t.Fatal(err)
	}
	lib, err := nvml.New(node.Interface())
	if err != nil {
		t.Fatal(err)
	}
	sys, err := lib.System()
	if err != nil {
		t.Fatal(err)
	}
	var infos []nvml.DeviceInfo
	for _, d := range lib.Devices() {
		infos = append(infos, d.Info())
	}
	return NodeInventory(sys, infos)
}

func TestNodeInventoryDGX1(t *testing.T) {
	inv := dgx1Inventory(t)
	want := map[string]string{
		names.LabelGPUProduct:       "Tesla-V100-SXM2-16GB",
		names.LabelGPUCount:         "8",
		names.LabelGPUMemoryMiB:     "16384",
		names.LabelGPUArch:          "volta",
		names.LabelGPUDriverVersion: "535.183.01",
		names.LabelGPUCUDAVersion:   "12.2",
	}
	if diff := cmp.Diff(want, inv.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	// The DGX-1 hybrid cube-mesh: two quads, doubled links, cross links i <-> i+4.
	const topo = "0-1:1,0-2:1,0-3:2,0-4:2,1-2:2,1-3:1,1-5:2,2-3:2,2-6:1,3-7:1,4-5:1,4-6:1,4-7:2,5-6:2,5-7:1,6-7:2"
	if got := inv.Annotations[names.AnnotationGPUTopology]; got != topo {
		t.Errorf("topology\n got %s\nwant %s", got, topo)
	}
}

func TestNodeInventoryNoGPUs(t *testing.T) {
	inv := NodeInventory(nvml.SystemInfo{}, nil)
	if diff := cmp.Diff(map[string]string{names.LabelGPUCount: "0"}, inv.Labels); diff != "" {
		t.Error(diff)
	}
	if len(inv.Annotations) != 0 {
		t.Errorf("annotations %v", inv.Annotations)
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"Tesla V100-SXM2-16GB":   "Tesla-V100-SXM2-16GB",
		"NVIDIA H100 80GB HBM3":  "NVIDIA-H100-80GB-HBM3",
		" weird/name (rev 2) ":   "weird-name--rev-2",
		"":                       "",
		string(make([]byte, 70)): "",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
	long := labelValue("A" + string(make([]byte, 100)) + "B")
	if len(long) > 63 {
		t.Errorf("label value of %d characters", len(long))
	}
}
