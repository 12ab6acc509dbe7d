package deviceplugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/gpufleet/gpufleet/pkg/deviceplugin"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// simSpecPath is where the agent writes its simulated GPUs' CDI spec.
const simSpecPath = "/var/run/cdi/sim.gpufleet.io-gpu.json"

// GPUUUIDs maps the simulated GPUs' UUIDs to their indices, from the CDI
// spec the agent wrote for the runtime.
func GPUUUIDs() (map[string]int, error) {
	data, err := os.ReadFile(simSpecPath)
	if err != nil {
		return nil, fmt.Errorf("the agent's CDI spec: %w", err)
	}
	var spec struct {
		Kind    string `json:"kind"`
		Devices []struct {
			Name  string `json:"name"`
			Edits struct {
				Env []string `json:"env"`
			} `json:"containerEdits"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", simSpecPath, err)
	}
	out := map[string]int{}
	for _, d := range spec.Devices {
		for _, kv := range d.Edits.Env {
			k, v, _ := strings.Cut(kv, "=")
			i, err := strconv.Atoi(strings.TrimPrefix(k, deviceplugin.EnvSimCDIPrefix))
			if err == nil && v == d.Name {
				out[d.Name] = i
			}
		}
	}
	if len(out) != GPUs {
		return nil, fmt.Errorf("%s names %d GPUs, want %d", simSpecPath, len(out), GPUs)
	}
	return out, nil
}

// Check compares, for every app container of a running pod, the GPUs its
// pod's gpufleet.io/gpu-indices annotation names with what the container
// got: its own environment (GPUFLEET_GPU_INDICES, NVIDIA_VISIBLE_DEVICES,
// and the variables of the CDI devices the runtime injected) and the
// kubelet's allocation in the pod-resources API. Shares must be on the
// annotated GPU; whole GPUs among the annotated ones, all of them across
// the containers when the containers ask for as many. nil means exact.
func (e *Env) Check(ctx context.Context, pod *corev1.Pod) error {
	uuids, err := GPUUUIDs()
	if err != nil {
		return err
	}
	annotated, err := names.ParseGPUIndices(pod.Annotations[names.AnnotationGPUIndices], GPUs)
	if err != nil {
		return fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	list, err := e.PodResources.List(ctx)
	if err != nil {
		return err
	}
	var listed *podresourcesv1.PodResources
	for _, p := range list {
		if p.GetNamespace() == pod.Namespace && p.GetName() == pod.Name {
			listed = p
		}
	}
	if listed == nil {
		return fmt.Errorf("pod %s: not in the kubelet's pod-resources list", pod.Name)
	}
	union := map[int]bool{}
	asked := 0
	for _, c := range pod.Spec.Containers {
		milli, whole := c.Resources.Limits[names.ResourceGPUMilli], c.Resources.Limits[names.ResourceGPU]
		asked += int(whole.Value())
		got, err := containerGPUs(pod, c.Name, listed, uuids)
		if err != nil {
			return fmt.Errorf("pod %s: %w", pod.Name, err)
		}
		for _, g := range got.indices {
			if !slices.Contains(annotated, g) {
				return fmt.Errorf("pod %s container %s: holds GPUs %v, annotation %v", pod.Name, c.Name, got.indices, annotated)
			}
			if union[g] && milli.Value() == 0 {
				return fmt.Errorf("pod %s container %s: GPU %d is given whole to two containers", pod.Name, c.Name, g)
			}
			union[g] = true
		}
		switch {
		case milli.Value() > 0:
			if len(got.indices) != 1 || got.milli != milli.Value() {
				return fmt.Errorf("pod %s container %s: asked %d milli, holds %d milli of GPUs %v", pod.Name, c.Name, milli.Value(), got.milli, got.indices)
			}
		case whole.Value() > 0:
			if int64(len(got.indices)) != whole.Value() {
				return fmt.Errorf("pod %s container %s: asked %d GPUs, holds %v", pod.Name, c.Name, whole.Value(), got.indices)
			}
		}
	}
	if asked == len(annotated) && len(union) != len(annotated) {
		return fmt.Errorf("pod %s: containers hold GPUs %v, annotation %v", pod.Name, slices.Sorted(maps.Keys(union)), annotated)
	}
	return nil
}

type held struct {
	indices []int
	milli   int64
}

// containerGPUs returns a container's GPUs, after checking that its
// environment, its CDI devices and the kubelet agree on them.
func containerGPUs(pod *corev1.Pod, name string, listed *podresourcesv1.PodResources, uuids map[string]int) (held, error) {
	var id string
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == name && s.State.Running != nil {
			id = s.ContainerID
		}
	}
	if id == "" {
		return held{}, fmt.Errorf("container %s is not running", name)
	}
	env, err := localcluster.ContainerEnv(id)
	if err != nil {
		return held{}, err
	}
	// The kubelet's allocation.
	var fromKubelet []int
	milli := int64(0)
	for _, c := range listed.GetContainers() {
		if c.GetName() != name {
			continue
		}
		for _, d := range c.GetDevices() {
			for _, dev := range d.GetDeviceIds() {
				uuid := dev // nvidia.com/gpu: the GPU's UUID
				if d.GetResourceName() == deviceplugin.ResourceMilli {
					// <UUID>-mNNN
					uuid = dev[:max(0, strings.LastIndex(dev, "-m"))]
					milli++
				}
				i, ok := uuids[uuid]
				if !ok {
					return held{}, fmt.Errorf("container %s: device %s is no GPU of the node", name, dev)
				}
				if !slices.Contains(fromKubelet, i) {
					fromKubelet = append(fromKubelet, i)
				}
			}
		}
	}
	slices.Sort(fromKubelet)
	// The container's own environment.
	fromEnv, err := names.ParseGPUIndices(env[deviceplugin.EnvGPUIndices], GPUs)
	if err != nil {
		return held{}, fmt.Errorf("container %s: %s=%q: %v", name, deviceplugin.EnvGPUIndices, env[deviceplugin.EnvGPUIndices], err)
	}
	slices.Sort(fromEnv)
	var fromCDI []int
	var visible []int
	for k, v := range env {
		if i, err := strconv.Atoi(strings.TrimPrefix(k, deviceplugin.EnvSimCDIPrefix)); err == nil && strings.HasPrefix(k, deviceplugin.EnvSimCDIPrefix) {
			if uuids[v] != i {
				return held{}, fmt.Errorf("container %s: CDI variable %s=%s names GPU %d", name, k, v, uuids[v])
			}
			fromCDI = append(fromCDI, i)
		}
	}
	slices.Sort(fromCDI)
	for _, u := range strings.Split(env[deviceplugin.EnvVisibleDevices], ",") {
		if i, ok := uuids[u]; ok {
			visible = append(visible, i)
		}
	}
	slices.Sort(visible)
	want := fmt.Sprint(fromKubelet)
	if fmt.Sprint(fromEnv) != want || fmt.Sprint(fromCDI) != want || fmt.Sprint(visible) != want {
		return held{}, fmt.Errorf("container %s: kubelet allocated GPUs %v, environment says %v, CDI devices %v, NVIDIA_VISIBLE_DEVICES %q", name, fromKubelet, fromEnv, fromCDI, env[deviceplugin.EnvVisibleDevices])
	}
	if milli > 0 && env[deviceplugin.EnvGPUMilli] != strconv.FormatInt(milli, 10) {
		return held{}, fmt.Errorf("container %s: holds %d milli, %s=%q", name, milli, deviceplugin.EnvGPUMilli, env[deviceplugin.EnvGPUMilli])
	}
	return held{indices: fromKubelet, milli: milli}, nil
}
