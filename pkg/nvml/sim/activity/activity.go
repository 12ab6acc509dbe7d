// Package activity is how processes on a simulated GPU node say how busy
// they keep its GPUs (see package sim). It has no cgo dependency, so any
// workload can report.
package activity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Activity is what one workload process reports to a simulated node: the
// file <dir>/<pid>.json, replaced atomically (write a temporary file, then
// rename) whenever its numbers change. The simulated GPUs are as busy as the
// processes say they were: a GPU's utilization over a window is the sum of
// the busy seconds its processes added in that window, divided by the
// window's length. A file whose process has exited is ignored.
//
//	{"pid": 4242,
//	 "pod": {"namespace": "ml", "name": "resnet-7d9f", "container": "server", "uid": "..."},
//	 "gpus": [{"index": 0, "busySecondsTotal": 12.5, "memoryBytes": 2147483648}]}
type Activity struct {
	PID  uint32       `json:"pid"`
	Pod  *PodIdentity `json:"pod,omitempty"`
	GPUs []GPUUse     `json:"gpus"`
}

// PodIdentity names the pod a simulated process belongs to. On a real node
// the agent finds it through the process's cgroup; a simulated node's
// processes run outside any pod, so they say it.
type PodIdentity struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Container string `json:"container,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// GPUUse is one process's use of one GPU.
type GPUUse struct {
	Index int `json:"index"`
	// BusySecondsTotal only grows: the time this process kept the GPU busy
	// since it started.
	BusySecondsTotal float64 `json:"busySecondsTotal"`
	MemoryBytes      uint64  `json:"memoryBytes"`
}

// ParseActivity decodes and checks one activity file. Unknown fields are an
// error: a misspelt field would otherwise silently read as zero.
func ParseActivity(data []byte, gpus int) (Activity, error) {
	var a Activity
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Activity{}, fmt.Errorf("decoding activity: %w", err)
	}
	if dec.More() {
		return Activity{}, errors.New("decoding activity: trailing data after the JSON object")
	}
	var errs []error
	if a.PID == 0 {
		errs = append(errs, errors.New("pid: must be set"))
	}
	seen := map[int]bool{}
	for i, g := range a.GPUs {
		if g.Index < 0 || g.Index >= gpus {
			errs = append(errs, fmt.Errorf("gpus[%d].index: %d is not a GPU of this node (0..%d)", i, g.Index, gpus-1))
		}
		if seen[g.Index] {
			errs = append(errs, fmt.Errorf("gpus[%d].index: GPU %d listed twice", i, g.Index))
		}
		seen[g.Index] = true
		if g.BusySecondsTotal < 0 || math.IsNaN(g.BusySecondsTotal) || math.IsInf(g.BusySecondsTotal, 0) {
			errs = append(errs, fmt.Errorf("gpus[%d].busySecondsTotal: %v must be a finite number >= 0", i, g.BusySecondsTotal))
		}
	}
	if a.Pod != nil && (a.Pod.Namespace == "" || a.Pod.Name == "") {
		errs = append(errs, errors.New("pod: namespace and name must both be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return Activity{}, err
	}
	return a, nil
}

// Reporter writes one process's activity file. Workloads on a simulated
// node (the inference server with --device=cpu on a demo node) use it.
// It is safe for concurrent use.
type Reporter struct {
	path string
	mu   sync.Mutex
	a    Activity
}

// NewReporter reports for the calling process on the given GPUs.
func NewReporter(dir string, gpus []int, pod *PodIdentity) (*Reporter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating simulation directory: %w", err)
	}
	pid := os.Getpid()
	r := &Reporter{path: filepath.Join(dir, strconv.Itoa(pid)+".json"), a: Activity{PID: uint32(pid), Pod: pod}}
	for _, g := range gpus {
		r.a.GPUs = append(r.a.GPUs, GPUUse{Index: g})
	}
	return r, r.Flush()
}

// AddBusy adds busy time on every GPU of the process, e.g. the duration of
// one batch.
func (r *Reporter) AddBusy(seconds float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.a.GPUs {
		r.a.GPUs[i].BusySecondsTotal += seconds
	}
}

// SetMemory sets the memory the process holds on each of its GPUs.
func (r *Reporter) SetMemory(bytes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.a.GPUs {
		r.a.GPUs[i].MemoryBytes = bytes
	}
}

// Flush writes the activity file atomically.
func (r *Reporter) Flush() error {
	r.mu.Lock()
	data, err := json.Marshal(r.a)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing activity: %w", err)
	}
	return os.Rename(tmp, r.path)
}

// Close removes the activity file: the process no longer uses its GPUs.
func (r *Reporter) Close() error {
	err := os.Remove(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
