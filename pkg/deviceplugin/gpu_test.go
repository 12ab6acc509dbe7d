//go:build gpu

package deviceplugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gpufleet/gpufleet/pkg/nvml"
)

// TestGPUAllocateNamesRealGPUs (make test-gpu, on a GPU machine): for the
// GPUs the driver reports, Allocate's CDI device names, NVIDIA_VISIBLE_DEVICES
// and GPUFLEET_GPU_* name exactly the UUIDs and indices NVML reports, and
// every device ID fits 63 characters. Where the NVIDIA container toolkit
// has written a CDI spec (/etc/cdi, /var/run/cdi), each GPU's CDI name is
// one of its devices.
func TestGPUAllocateNamesRealGPUs(t *testing.T) {
	lib, err := nvml.New(gonvml.New())
	if err != nil {
		t.Fatalf("NVML: %v", err)
	}
	defer func() { _ = lib.Shutdown() }()
	var infos []nvml.DeviceInfo
	for _, d := range lib.Devices() {
		infos = append(infos, d.Info())
	}
	if len(infos) == 0 {
		t.Fatal("NVML reports no GPU")
	}
	p, err := New(Config{
		GPUs: GPUsFromNVML(infos), Milli: true, Whole: true, Dir: t.TempDir(),
		PodResources: &fakePodResources{}, Pods: &fakePods{},
		Allocation: AllocationConfig{CDIKind: "nvidia.com/gpu", VisibleDevicesEnv: true, MPS: MPSConfig{Enabled: true, PipeDir: "/tmp/nvidia-mps"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cdi := cdiDeviceNames(t)
	empty := p.inv.view(nil)
	for _, info := range infos {
		t.Logf("GPU %d: %s %s, %d MiB", info.Index, info.Name, info.UUID, info.MemoryTotalBytes>>20)
		for _, res := range []string{ResourceWhole, ResourceMilli} {
			ids := []string{wholeID(info.UUID)}
			want := "1000"
			if res == ResourceMilli {
				ids = []string{milliID(info.UUID, 0), milliID(info.UUID, 999)}
				want = "2"
			}
			for _, id := range ids {
				if len(id) > maxDeviceID {
					t.Errorf("device ID %q is longer than %d", id, maxDeviceID)
				}
			}
			resp, err := p.allocate(res, ids, empty)
			if err != nil {
				t.Fatalf("%s on GPU %d: %v", res, info.Index, err)
			}
			if len(resp.CdiDevices) != 1 || resp.CdiDevices[0].Name != "nvidia.com/gpu="+info.UUID {
				t.Errorf("%s on GPU %d: CDI devices %v, want nvidia.com/gpu=%s", res, info.Index, resp.CdiDevices, info.UUID)
			}
			env := resp.Envs
			if env[EnvVisibleDevices] != info.UUID || env[EnvGPUUUIDs] != info.UUID || env[EnvGPUIndices] != strconv.Itoa(info.Index) || env[EnvGPUMilli] != want {
				t.Errorf("%s on GPU %d: environment %v", res, info.Index, env)
			}
			if res == ResourceMilli {
				wantMem := strconv.FormatUint(info.MemoryTotalBytes*2/MilliPerGPU>>20, 10) + "M"
				if env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] != "0="+wantMem {
					t.Errorf("share of GPU %d: MPS memory limit %q, want 0=%s", info.Index, env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], wantMem)
				}
			}
			if cdi != nil && !cdi[info.UUID] {
				t.Errorf("the toolkit's CDI spec has no nvidia.com/gpu device %s", info.UUID)
			}
		}
	}
	if cdi == nil {
		t.Log("no NVIDIA CDI spec on this machine (nvidia-ctk cdi generate writes one): CDI names checked against NVML only")
	}
}

// cdiDeviceNames returns the device names of the nvidia.com/gpu CDI specs
// on this machine, or nil without any.
func cdiDeviceNames(t *testing.T) map[string]bool {
	var names map[string]bool
	for _, dir := range []string{"/etc/cdi", "/var/run/cdi"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			if !strings.HasSuffix(f, ".json") {
				continue // YAML specs: not read here
			}
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var spec struct {
				Kind    string `json:"kind"`
				Devices []struct {
					Name string `json:"name"`
				} `json:"devices"`
			}
			if json.Unmarshal(data, &spec) != nil || spec.Kind != "nvidia.com/gpu" {
				continue
			}
			if names == nil {
				names = map[string]bool{}
			}
			for _, d := range spec.Devices {
				names[d.Name] = true
			}
			t.Logf("CDI spec %s: %d devices", f, len(spec.Devices))
		}
	}
	return names
}
