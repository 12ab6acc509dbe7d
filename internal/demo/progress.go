package demo

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/stack"
)

// progress prints the replay's state as plain text lines, one per call:
// readable in a terminal and when piped.
type progress struct {
	nodes    []string
	widths   []int
	schedule Schedule
}

func newProgress(nodes []string, s Schedule) *progress {
	p := &progress{nodes: nodes, schedule: s}
	for _, n := range nodes {
		p.widths = append(p.widths, max(6, len(n)))
	}
	return p
}

// header names the columns: time into the replay and the trace, target
// and served requests per second, replicas (desired/ready), failed
// requests, GPU utilization per node, and the GPU indices of the model's
// pods per node.
func (p *progress) header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s %7s %7s %7s %8s %6s  ", "t", "trace", "target", "served", "replicas", "failed")
	for i, n := range p.nodes {
		fmt.Fprintf(&b, "%*s ", p.widths[i], n)
	}
	b.WriteString(" model pods (node: GPU indices)\n")
	// The second line names the units.
	fmt.Fprintf(&b, "%6s %7s %7s %7s %8s %6s  ", "", "", "req/s", "req/s", "want/rdy", "")
	b.WriteString("GPU util %")
	return b.String() + "\n"
}

// line is one sample.
func (p *progress) line(s stack.Sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.0fs %7s %7.1f %7s %8s %6d  ", s.At.Seconds(), traceClock(p.schedule.TraceOffset(s.At)),
		s.TargetRPS, orDash(s.ServedRPS, "%.1f"), fmt.Sprintf("%d/%d", s.Replicas, s.Ready), s.Failed)
	for i := range p.nodes {
		u := math.NaN()
		if i < len(s.Utilization) {
			u = s.Utilization[i] * 100
		}
		fmt.Fprintf(&b, "%*s ", p.widths[i], orDash(u, "%.1f"))
	}
	b.WriteString(" " + podsText(p.nodes, s.PodGPUs))
	return strings.TrimRight(b.String(), " ") + "\n"
}

// podsText is "node: 0,1,2 node2: 3" for the nodes with model pods, "-"
// when none has.
func podsText(nodes []string, podGPUs [][]string) string {
	var parts []string
	for i, gpus := range podGPUs {
		if len(gpus) > 0 && i < len(nodes) {
			parts = append(parts, nodes[i]+": "+strings.Join(gpus, ","))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "  ")
}

// traceClock is an offset into the trace as hours and minutes, "13h05".
func traceClock(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	return fmt.Sprintf("%dh%02d", m/60, m%60)
}

func orDash(v float64, format string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}
