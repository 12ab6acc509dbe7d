// Package sim replays GPU cluster traces through the real kube-scheduler
// framework with the GPUPack plugin: the FGD paper's protocol (inflate,
// shuffle, arrive only) and a replay of arrivals and departures in trace
// time. See docs/gpusim.md.
package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// Node is one node of a trace.
type Node struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	GPUs      int
	// Model is the GPU model's short name (V100M16, T4, G2, ...).
	Model string
}

// Pod is one pod of a trace.
type Pod struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	// GPUs and GPUMilli as the openb trace writes them: num_gpu GPUs of
	// which each is used gpu_milli/1000 (a share when num_gpu is 1).
	GPUs     int
	GPUMilli int64
	// Models the pod accepts; empty accepts any.
	Models []string
	// CreationTime and DeletionTime are seconds in trace time; Deletion 0
	// means the pod never leaves.
	CreationTime, DeletionTime int64
}

// PerGPUMilli is the milli-GPU taken from each GPU (0 for CPU-only pods).
func (p Pod) PerGPUMilli() int64 {
	if p.GPUs == 0 {
		return 0
	}
	return min(max(p.GPUMilli, 0), gpupack.MilliPerGPU)
}

// TotalGPUMilli is what the pod takes of the cluster's GPUs.
func (p Pod) TotalGPUMilli() int64 { return int64(p.GPUs) * p.PerGPUMilli() }

// table reads a CSV with a header, giving each row's fields by column name.
// Errors name the file, line and column.
type table struct {
	path string
	r    *csv.Reader
	cols map[string]int
	line int
	row  []string
}

func openTable(path string, rd io.Reader, required ...string) (*table, error) {
	r := csv.NewReader(rd)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the header: %w", path, err)
	}
	t := &table{path: path, r: r, cols: map[string]int{}, line: 1}
	for i, h := range header {
		t.cols[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, c := range required {
		if _, ok := t.cols[c]; !ok {
			return nil, fmt.Errorf("%s: the header has no column %q (it has %s)", path, c, strings.Join(header, ","))
		}
	}
	return t, nil
}

// next reads the next row; io.EOF at the end.
func (t *table) next() error {
	row, err := t.r.Read()
	t.line++
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("%s: %w", t.path, err)
	}
	t.row = row
	return nil
}

func (t *table) has(col string) bool { _, ok := t.cols[col]; return ok }

func (t *table) str(col string) string {
	i, ok := t.cols[col]
	if !ok || i >= len(t.row) {
		return ""
	}
	return strings.TrimSpace(t.row[i])
}

func (t *table) errorf(col, format string, args ...any) error {
	return fmt.Errorf("%s:%d: column %s: %s", t.path, t.line, col, fmt.Sprintf(format, args...))
}

// int reads a non-negative integer; an empty optional cell is 0.
func (t *table) int(col string, optional bool) (int64, error) {
	v := t.str(col)
	if v == "" {
		if optional {
			return 0, nil
		}
		return 0, t.errorf(col, "is empty")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, t.errorf(col, "%q is not a non-negative integer", v)
	}
	return n, nil
}

// resources reads the cpu_milli and memory_mib columns and the GPU count
// from gpuCol.
func (t *table) resources(gpuCol string) (cpu, memory int64, gpus int, err error) {
	if cpu, err = t.int("cpu_milli", false); err != nil {
		return 0, 0, 0, err
	}
	if memory, err = t.int("memory_mib", false); err != nil {
		return 0, 0, 0, err
	}
	n, err := t.int(gpuCol, false)
	if err != nil {
		return 0, 0, 0, err
	}
	if n > 1024 {
		return 0, 0, 0, t.errorf(gpuCol, "%d GPUs is not plausible (at most 1024)", n)
	}
	return cpu, memory, int(n), nil
}

// ReadNodes reads a node list: columns sn (or name), cpu_milli, memory_mib,
// gpu, model, and optionally count (the row stands for count identical
// nodes, named name-0, name-1, ...).
func ReadNodes(path string, rd io.Reader) ([]Node, error) {
	t, err := openTable(path, rd, "cpu_milli", "memory_mib", "gpu")
	if err != nil {
		return nil, err
	}
	nameCol := "sn"
	if !t.has(nameCol) {
		nameCol = "name"
	}
	var nodes []Node
	seen := map[string]int{}
	for {
		if err := t.next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		n := Node{Name: t.str(nameCol), Model: t.str("model")}
		if n.Name == "" {
			return nil, t.errorf(nameCol, "node name is empty")
		}
		if n.CPUMilli, n.MemoryMiB, n.GPUs, err = t.resources("gpu"); err != nil {
			return nil, err
		}
		if n.GPUs > 0 && n.Model == "" {
			return nil, t.errorf("model", "a node with GPUs needs its GPU model (e.g. V100M16)")
		}
		count := int64(1)
		if t.has("count") {
			if count, err = t.int("count", false); err != nil {
				return nil, err
			}
		}
		for i := range count {
			c := n
			if t.has("count") {
				c.Name = fmt.Sprintf("%s-%d", n.Name, i)
			}
			if prev, dup := seen[c.Name]; dup {
				return nil, t.errorf(nameCol, "node %q already defined on line %d", c.Name, prev)
			}
			seen[c.Name] = t.line
			nodes = append(nodes, c)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no nodes", path)
	}
	return nodes, nil
}

// ReadPods reads a pod list: columns name, cpu_milli, memory_mib, num_gpu,
// gpu_milli, and optionally gpu_spec (allowed models, '|'-separated),
// creation_time and deletion_time (seconds). Other columns are ignored.
func ReadPods(path string, rd io.Reader) ([]Pod, error) {
	t, err := openTable(path, rd, "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
	if err != nil {
		return nil, err
	}
	var pods []Pod
	seen := map[string]int{}
	for {
		if err := t.next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		p := Pod{Name: t.str("name")}
		if p.Name == "" {
			return nil, t.errorf("name", "pod name is empty")
		}
		if prev, dup := seen[p.Name]; dup {
			return nil, t.errorf("name", "pod %q already defined on line %d", p.Name, prev)
		}
		seen[p.Name] = t.line
		if p.CPUMilli, p.MemoryMiB, p.GPUs, err = t.resources("num_gpu"); err != nil {
			return nil, err
		}
		if p.GPUMilli, err = t.int("gpu_milli", false); err != nil {
			return nil, err
		}
		if p.GPUs > 1 && p.GPUMilli < gpupack.MilliPerGPU {
			return nil, t.errorf("gpu_milli", "a pod with %d GPUs takes whole GPUs (gpu_milli 1000), not %d", p.GPUs, p.GPUMilli)
		}
		if p.GPUs == 1 && p.GPUMilli == 0 {
			return nil, t.errorf("gpu_milli", "a pod with one GPU must use some of it (1..1000)")
		}
		if spec := t.str("gpu_spec"); spec != "" {
			if p.Models, err = gpupack.ParseModels(spec); err != nil {
				return nil, t.errorf("gpu_spec", "%v", err)
			}
		}
		if p.CreationTime, err = t.int("creation_time", true); err != nil {
			return nil, err
		}
		if p.DeletionTime, err = t.int("deletion_time", true); err != nil {
			return nil, err
		}
		if p.DeletionTime != 0 && p.DeletionTime < p.CreationTime {
			return nil, t.errorf("deletion_time", "%d is before creation_time %d", p.DeletionTime, p.CreationTime)
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s: no pods", path)
	}
	return pods, nil
}

// ReadNodesFile and ReadPodsFile read the lists from files.
func ReadNodesFile(path string) ([]Node, error) { return readFile(path, ReadNodes) }

// ReadPodsFile reads a pod list from a file.
func ReadPodsFile(path string) ([]Pod, error) { return readFile(path, ReadPods) }

func readFile[T any](path string, read func(string, io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return read(path, f)
}
