package deviceplugin

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// allocation is what a container is given, comparable with cmp.
type allocation struct {
	Envs    map[string]string
	Mounts  []mount
	CDI     []string
	Devices int
}

type mount struct {
	Container, Host string
	ReadOnly        bool
}

func allocationOf(r *pluginapi.ContainerAllocateResponse) allocation {
	a := allocation{Envs: r.GetEnvs(), Devices: len(r.GetDevices())}
	for _, m := range r.GetMounts() {
		a.Mounts = append(a.Mounts, mount{Container: m.GetContainerPath(), Host: m.GetHostPath(), ReadOnly: m.GetReadOnly()})
	}
	for _, d := range r.GetCdiDevices() {
		a.CDI = append(a.CDI, d.GetName())
	}
	return a
}

// envs returns the environment every container with GPUs gets, plus more.
func envs(indices string, milli int, more ...string) map[string]string {
	var uuids []string
	for _, i := range strings.Split(indices, ",") {
		n, _ := strconv.Atoi(i)
		uuids = append(uuids, testUUID(n))
	}
	m := map[string]string{
		"GPUFLEET_GPU_INDICES": indices,
		"GPUFLEET_GPU_UUIDS":   strings.Join(uuids, ","),
		"GPUFLEET_GPU_MILLI":   strconv.Itoa(milli),
	}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i]] = more[i+1]
	}
	return m
}

func TestAllocateTellsTheContainerItsGPUs(t *testing.T) {
	const pipeDir = "/run/nvidia/mps"
	mps := MPSConfig{Enabled: true, PipeDir: pipeDir}
	all := AllocationConfig{CDIKind: "nvidia.com/gpu", VisibleDevicesEnv: true, MPS: mps}
	pipeMount := []mount{{Container: pipeDir, Host: pipeDir}}
	for _, tc := range []struct {
		name     string
		cfg      AllocationConfig
		resource string
		ids      []string
		want     allocation
	}{
		{
			name:     "share",
			resource: ResourceMilli, ids: milliIDs(3, 100, 250),
			want: allocation{Envs: envs("3", 250)},
		},
		{
			name: "share with NVIDIA_VISIBLE_DEVICES and CDI", cfg: AllocationConfig{CDIKind: "nvidia.com/gpu", VisibleDevicesEnv: true},
			resource: ResourceMilli, ids: milliIDs(3, 0, 250),
			want: allocation{Envs: envs("3", 250, "NVIDIA_VISIBLE_DEVICES", testUUID(3)), CDI: []string{"nvidia.com/gpu=" + testUUID(3)}},
		},
		{
			name: "share with simulated CDI devices", cfg: AllocationConfig{CDIKind: SimCDIKind},
			resource: ResourceMilli, ids: milliIDs(7, 0, 500),
			want: allocation{Envs: envs("7", 500), CDI: []string{"sim.gpufleet.io/gpu=" + testUUID(7)}},
		},
		{
			name: "quarter share under MPS", cfg: AllocationConfig{MPS: mps},
			resource: ResourceMilli, ids: milliIDs(3, 500, 250),
			want: allocation{
				Envs: envs("3", 250,
					"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "25",
					// A quarter of 32510.5 MiB.
					"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=8127M",
					"CUDA_MPS_PIPE_DIRECTORY", pipeDir),
				Mounts: pipeMount,
			},
		},
		{
			name: "third share under MPS", cfg: AllocationConfig{MPS: mps},
			resource: ResourceMilli, ids: milliIDs(0, 0, 333),
			want: allocation{
				Envs: envs("0", 333,
					"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "33",
					"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=10825M",
					"CUDA_MPS_PIPE_DIRECTORY", pipeDir),
				Mounts: pipeMount,
			},
		},
		{
			name: "tiny share under MPS keeps a thread percentage", cfg: AllocationConfig{MPS: mps},
			resource: ResourceMilli, ids: milliIDs(0, 0, 4),
			want: allocation{
				Envs: envs("0", 4,
					"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "1",
					"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=130M",
					"CUDA_MPS_PIPE_DIRECTORY", pipeDir),
				Mounts: pipeMount,
			},
		},
		{
			name: "1000 milli with everything on", cfg: all,
			resource: ResourceMilli, ids: milliIDs(6, 0, 1000),
			want: allocation{
				Envs: envs("6", 1000,
					"NVIDIA_VISIBLE_DEVICES", testUUID(6),
					"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "100",
					"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=32510M",
					"CUDA_MPS_PIPE_DIRECTORY", pipeDir),
				Mounts: pipeMount,
				CDI:    []string{"nvidia.com/gpu=" + testUUID(6)},
			},
		},
		{
			name:     "whole GPU",
			resource: ResourceWhole, ids: wholeIDs(0),
			want: allocation{Envs: envs("0", 1000)},
		},
		{
			name: "whole GPUs with everything on get no MPS limits", cfg: all,
			resource: ResourceWhole, ids: wholeIDs(1, 5),
			want: allocation{
				Envs: envs("1,5", 1000, "NVIDIA_VISIBLE_DEVICES", testUUID(1)+","+testUUID(5)),
				CDI:  []string{"nvidia.com/gpu=" + testUUID(1), "nvidia.com/gpu=" + testUUID(5)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Allocation = tc.cfg })
			resps, err := h.kubelet.allocate(t, tc.resource, tc.ids)
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if diff := cmp.Diff(tc.want, allocationOf(resps[0]), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Allocate (-want +got):\n%s", diff)
			}
		})
	}
}

// The kubelet passes IDs in no particular order; whatever the order, the
// container's indices and UUIDs must name the same GPUs, pairwise.
func TestAllocateIndicesAndUUIDsAgree(t *testing.T) {
	h := start(t, func(c *Config) { c.Allocation.VisibleDevicesEnv = true })
	for _, ids := range [][]string{wholeIDs(6, 2), wholeIDs(7, 0, 3, 1), wholeIDs(4, 5, 6, 7, 0, 1, 2, 3)} {
		resps, err := h.kubelet.allocate(t, ResourceWhole, ids)
		if err != nil {
			t.Fatalf("Allocate %v: %v", ids, err)
		}
		env := resps[0].GetEnvs()
		indices := strings.Split(env[EnvGPUIndices], ",")
		uuids := strings.Split(env[EnvGPUUUIDs], ",")
		if len(indices) != len(ids) || len(uuids) != len(ids) {
			t.Fatalf("%s=%s %s=%s for %d GPUs", EnvGPUIndices, env[EnvGPUIndices], EnvGPUUUIDs, env[EnvGPUUUIDs], len(ids))
		}
		for i := range indices {
			n, err := strconv.Atoi(indices[i])
			if err != nil || testUUID(n) != uuids[i] {
				t.Errorf("%s[%d]=%s but %s[%d]=%s", EnvGPUIndices, i, indices[i], EnvGPUUUIDs, i, uuids[i])
			}
		}
		got, want := slices.Sorted(slices.Values(uuids)), slices.Sorted(slices.Values(ids))
		if !slices.Equal(got, want) {
			t.Errorf("%s=%v, want the GPUs %v", EnvGPUUUIDs, got, want)
		}
		if env[EnvVisibleDevices] != env[EnvGPUUUIDs] {
			t.Errorf("%s=%s, want the container's UUIDs %s", EnvVisibleDevices, env[EnvVisibleDevices], env[EnvGPUUUIDs])
		}
	}
}

func TestAllocateAnswersEveryContainerOfARequest(t *testing.T) {
	h := start(t)
	resps, err := h.kubelet.allocate(t, ResourceMilli, milliIDs(1, 0, 250), milliIDs(2, 0, 500))
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	for i, want := range []map[string]string{envs("1", 250), envs("2", 500)} {
		if diff := cmp.Diff(want, resps[i].GetEnvs()); diff != "" {
			t.Errorf("container %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestAllocateRefusesWhatBreaksSharing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		held     []holding
		resource string
		ids      []string
		msg      []string
	}{
		{
			name:     "share spanning two GPUs",
			resource: ResourceMilli, ids: append(milliIDs(1, 0, 125), milliIDs(2, 0, 125)...),
			msg: []string{"1,2"},
		},
		{
			name:     "whole GPU with shares in use",
			held:     []holding{{pod: "notebook", on: "4", resource: ResourceMilli, ids: milliIDs(4, 0, 250)}},
			resource: ResourceWhole, ids: wholeIDs(4),
			msg: []string{"GPU 4", "ml/notebook/main"},
		},
		{
			name:     "whole GPUs one of which has shares in use",
			held:     []holding{{pod: "notebook", on: "4", resource: ResourceMilli, ids: milliIDs(4, 0, 1)}},
			resource: ResourceWhole, ids: wholeIDs(3, 4),
			msg: []string{"GPU 4", "ml/notebook/main"},
		},
		{
			name:     "share on a GPU given out whole",
			held:     []holding{{pod: "trainer", on: "6", resource: ResourceWhole, ids: wholeIDs(6)}},
			resource: ResourceMilli, ids: milliIDs(6, 0, 250),
			msg: []string{"GPU 6", "ml/trainer/main"},
		},
		{
			name:     "ID of no GPU of this node",
			resource: ResourceMilli, ids: []string{"GPU-00000000-0000-0000-0000-000000000000-m001"},
			msg: []string{"GPU-00000000-0000-0000-0000-000000000000-m001"},
		},
		{
			name:     "malformed milli ID",
			resource: ResourceMilli, ids: []string{testUUID(0)},
			msg: []string{testUUID(0)},
		},
		{
			name:     "no IDs",
			resource: ResourceWhole, ids: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			h.holdAll(tc.held)
			_, err := h.kubelet.allocate(t, tc.resource, tc.ids)
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("Allocate error %v, want code FailedPrecondition", err)
			}
			if m := missing(errMsg(err), tc.msg...); m != nil {
				t.Errorf("error %q does not name %q", err, m)
			}
		})
	}
}

func TestAllocateWhenPodResourcesDoesNotAnswer(t *testing.T) {
	h := start(t)
	h.podres.fail(errListFailed)
	_, err := h.kubelet.allocate(t, ResourceWhole, wholeIDs(0))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Allocate error %v, want code Unavailable (it cannot check the GPU is not shared)", err)
	}
}
