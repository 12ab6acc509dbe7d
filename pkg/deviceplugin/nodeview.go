package deviceplugin

import (
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// The resources the plugin can advertise.
const (
	ResourceMilli = string(names.ResourceGPUMilli)
	ResourceWhole = string(names.ResourceGPU)
)

// containerRef names one container of one pod.
type containerRef struct {
	Namespace, Pod, Container string
}

// podDevices is one pod as the pod-resources API lists it: its sidecars and
// app containers (not its other init containers: the API leaves them out)
// with the gpufleet device IDs each holds, by resource.
type podDevices struct {
	Namespace, Name string
	Containers      map[string]map[string][]string
}

// nodeView is what the kubelet has given out on this node, from one
// pod-resources List.
type nodeView struct {
	pods []podDevices
	// whole holds, per GPU index, the container the GPU is given to whole.
	whole map[int]containerRef
	// milli is the share given out of each GPU, and sharers who holds it.
	milli   map[int]int
	sharers map[int][]containerRef
}

// view reads a pod-resources List. Devices of other resources and IDs that
// name no GPU of this node are left out.
func (inv *inventory) view(list []*podresourcesv1.PodResources) *nodeView {
	v := &nodeView{whole: map[int]containerRef{}, milli: map[int]int{}, sharers: map[int][]containerRef{}}
	for _, p := range list {
		pd := podDevices{Namespace: p.GetNamespace(), Name: p.GetName(), Containers: map[string]map[string][]string{}}
		for _, c := range p.GetContainers() {
			devs := map[string][]string{}
			ref := containerRef{Namespace: pd.Namespace, Pod: pd.Name, Container: c.GetName()}
			for _, d := range c.GetDevices() {
				res := d.GetResourceName()
				if res != ResourceMilli && res != ResourceWhole {
					continue
				}
				for _, id := range d.GetDeviceIds() {
					g, err := inv.gpuOf(res, id)
					if err != nil {
						continue
					}
					devs[res] = append(devs[res], id)
					if res == ResourceWhole {
						v.whole[g.Index] = ref
						continue
					}
					if v.milli[g.Index] == 0 || v.sharers[g.Index][len(v.sharers[g.Index])-1] != ref {
						v.sharers[g.Index] = append(v.sharers[g.Index], ref)
					}
					v.milli[g.Index]++
				}
			}
			pd.Containers[c.GetName()] = devs
		}
		v.pods = append(v.pods, pd)
	}
	return v
}

// holder returns the container that holds exactly the device IDs ids of
// resource, as sets.
func (v *nodeView) holder(resource string, ids []string) (containerRef, bool) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, p := range v.pods {
		for name, devs := range p.Containers {
			got := devs[resource]
			if len(got) != len(want) {
				continue
			}
			all := true
			for _, id := range got {
				if !want[id] {
					all = false
					break
				}
			}
			if all {
				return containerRef{Namespace: p.Namespace, Pod: p.Name, Container: name}, true
			}
		}
	}
	return containerRef{}, false
}
