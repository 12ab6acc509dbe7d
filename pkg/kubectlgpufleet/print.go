package kubectlgpufleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Output formats of nodes.
const (
	OutputTable = ""
	OutputWide  = "wide"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// PrintNodes writes the inventory: a line per node (default), a line per
// GPU with its pods (wide), or the structure (json, yaml).
func PrintNodes(w io.Writer, nodes []Node, format string) error {
	switch format {
	case OutputJSON:
		data, err := json.MarshalIndent(struct {
			Nodes []Node `json:"nodes"`
		}{nodes}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case OutputYAML:
		data, err := yaml.Marshal(struct {
			Nodes []Node `json:"nodes"`
		}{nodes})
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case OutputTable:
		return printTable(w, nodes)
	case OutputWide:
		return printWide(w, nodes)
	}
	return fmt.Errorf("unknown output format %q: use wide, json or yaml", format)
}

func utilization(n Node) string {
	if n.Utilization == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100**n.Utilization)
}

func printTable(w io.Writer, nodes []Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMODEL\tGPUS\tALLOCATED\tFREE\tWHOLE FREE\tLARGEST FREE SHARE\tPODS\tUTIL")
	for _, n := range nodes {
		count, alloc, free := n.Totals()
		wholeFree, largest := 0, int64(0)
		pods := map[string]bool{}
		for _, g := range n.GPUs {
			if !g.Unhealthy && g.Allocated == 0 {
				wholeFree++
			}
			largest = max(largest, g.Free)
			for _, p := range g.Pods {
				pods[p.Namespace+"/"+p.Pod] = true
			}
		}
		for _, p := range n.Unplaced {
			pods[p.Namespace+"/"+p.Pod] = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%dm\t%d\t%s\n", n.Name, n.Model, count,
			gpus(alloc), gpus(free), wholeFree, largest, len(pods), utilization(n))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printUnplaced(w, nodes)
}

func printWide(w io.Writer, nodes []Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMODEL\tGPU\tALLOCATED\tFREE\tPODS")
	for _, n := range nodes {
		for _, g := range n.GPUs {
			var pods []string
			for _, p := range g.Pods {
				pods = append(pods, fmt.Sprintf("%s/%s(%dm)", p.Namespace, p.Pod, p.Milli))
			}
			free := fmt.Sprintf("%dm", g.Free)
			if g.Unhealthy {
				free = "unhealthy"
			}
			list := strings.Join(pods, ",")
			if list == "" {
				list = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%dm\t%s\t%s\n", n.Name, n.Model, g.Index, g.Allocated, free, list)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printUnplaced(w, nodes)
}

// printUnplaced lists pods whose GPUs are unknown, with why.
func printUnplaced(w io.Writer, nodes []Node) error {
	for _, n := range nodes {
		for _, p := range n.Unplaced {
			if _, err := fmt.Fprintf(w, "note: %s/%s on %s holds %dm of no known GPU: %s\n", p.Namespace, p.Pod, n.Name, p.Milli, p.Problem); err != nil {
				return err
			}
		}
	}
	return nil
}

// gpus writes milli-GPU as GPUs, e.g. 2500 -> "2.5".
func gpus(milli int64) string {
	s := fmt.Sprintf("%.3f", float64(milli)/milliPerGPU)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
