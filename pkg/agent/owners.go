package agent

import (
	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
)

// CgroupOwners resolves a GPU process to its pod on a real node: the pod
// UID and container ID from /proc/<pid>/cgroup, then the pod's name from
// an index of the node's pods.
type CgroupOwners struct {
	Proc attribution.ProcResolver
	Pods *attribution.PodIndex
}

// PodOfProcess implements ProcessOwners.
func (c CgroupOwners) PodOfProcess(pid uint32) (attribution.PodRef, bool) {
	uid, containerID, err := c.Proc.Resolve(pid)
	if err != nil || c.Pods == nil {
		return attribution.PodRef{}, false
	}
	return c.Pods.ByUID(uid, containerID)
}

// SimOwners resolves the processes of a simulated node through what they
// reported: they run outside any pod's cgroup.
type SimOwners struct{ Node *sim.Node }

// PodOfProcess implements ProcessOwners.
func (s SimOwners) PodOfProcess(pid uint32) (attribution.PodRef, bool) {
	id, ok := s.Node.PodOf(pid)
	if !ok {
		return attribution.PodRef{}, false
	}
	return attribution.PodRef{Namespace: id.Namespace, Name: id.Name, Container: id.Container, UID: id.UID}, true
}

// ChainOwners asks each resolver in turn.
type ChainOwners []ProcessOwners

// PodOfProcess implements ProcessOwners.
func (c ChainOwners) PodOfProcess(pid uint32) (attribution.PodRef, bool) {
	for _, o := range c {
		if ref, ok := o.PodOfProcess(pid); ok {
			return ref, true
		}
	}
	return attribution.PodRef{}, false
}
