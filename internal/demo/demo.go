// Package demo is `gpufleet demo`: the whole system (internal/stack) on a
// local control plane under a load shaped by a real request-rate trace
// replayed fast, with live progress in the terminal, ending with a GPU cost
// report, plots and a timeline in an output directory. docs/demo.md says
// what it shows and how the trace is read.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// DefaultTrace is the genai-qps trace, relative to the module root.
const DefaultTrace = "../shared/traces/genai-qps/qps.csv"

// Options configure a run. Validate them first (cmd/gpufleet/app does).
type Options struct {
	// Trace is the request-rate trace (CSV, see ReadTrace).
	Trace string
	// Duration is the replay's length; Speed, when positive, sets it
	// instead: the trace's length / Speed.
	Duration time.Duration
	Speed    float64
	// MaxRPS is the target rate of the trace's busiest second of replay.
	MaxRPS float64
	// TargetRPS is the HPA's requests_per_second per pod; MaxReplicas its
	// maximum.
	TargetRPS   int64
	MaxReplicas int32
	// Out is the output directory.
	Out string
	// BinDir holds the binaries (empty: bin/ of the module).
	BinDir string
	// CostPeriod is the adapter's cost sampling period.
	CostPeriod time.Duration
	// ProgressEvery is how often a progress line is printed.
	ProgressEvery time.Duration
	// Stdout receives the progress and the final report.
	Stdout io.Writer
	// Node is where the model pods run: NodeReal (pkg/localcluster's real
	// node: gpufleet's images under a kubelet), NodeSimulated, or NodeAuto
	// (real where the machine can run it, else simulated, saying why).
	Node string
}

// Node kinds of Options.Node.
const (
	NodeAuto      = "auto"
	NodeReal      = "real"
	NodeSimulated = "simulated"
)

// chooseNode resolves Options.Node to real or simulated and says which,
// and why not real where it falls back.
func chooseNode(o Options) (real bool, err error) {
	switch o.Node {
	case NodeSimulated:
		fmt.Fprintf(o.Stdout, "node: simulated (--node=simulated)\n")
		return false, nil
	case NodeReal, NodeAuto, "":
		why := stack.RealNodeUnavailable()
		if why == nil {
			fmt.Fprintf(o.Stdout, "node: real (a kubelet, containerd and kube-proxy on this machine running gpufleet's images)\n")
			return true, nil
		}
		if o.Node == NodeReal {
			return false, fmt.Errorf("--node=real: %w", why)
		}
		fmt.Fprintf(o.Stdout, "node: simulated, because %v\n", why)
		return false, nil
	default:
		return false, fmt.Errorf("--node=%q: want auto, real or simulated", o.Node)
	}
}

// Nodes are the demo's simulated nodes: the stack's (two 8-GPU V100 nodes
// and a 4-GPU T4 node), the T4 node on spot capacity, so that the cost
// report prices both kinds.
func Nodes() []localcluster.GPUNode {
	nodes := stack.DefaultNodes()
	for i := range nodes {
		if nodes[i].Model == "T4" {
			nodes[i].Labels = map[string]string{"karpenter.sh/capacity-type": "spot"}
		}
	}
	return nodes
}

// Run runs the demo and writes its outputs. Every process it starts is
// stopped before it returns, also when ctx ends (Ctrl-C).
func Run(ctx context.Context, o Options) error {
	out := o.Stdout
	tr, err := LoadTrace(o.Trace)
	if err != nil {
		return fmt.Errorf("reading the trace: %w", err)
	}
	duration := o.Duration
	if o.Speed > 0 {
		duration = time.Duration(float64(tr.Duration()) / o.Speed)
	}
	sched, err := Compress(tr, duration, time.Second, o.MaxRPS)
	if err != nil {
		return fmt.Errorf("replaying %s: %w", o.Trace, err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	pricesPath := filepath.Join(o.Out, FilePrices)
	if err := os.WriteFile(pricesPath, []byte(Prices), 0o644); err != nil {
		return err
	}
	real, err := chooseNode(o)
	if err != nil {
		return err
	}
	res := &Result{TraceName: traceName(o.Trace), Trace: tr, Schedule: sched, Nodes: Nodes(), MaxReplicas: o.MaxReplicas, TargetRPS: o.TargetRPS, RealNode: real}
	if real && o.MaxReplicas > stack.RealNodeGPUs {
		fmt.Fprintf(out, "max replicas %d: the real node has %d GPUs, using %d\n", o.MaxReplicas, stack.RealNodeGPUs, stack.RealNodeGPUs)
		res.MaxReplicas = stack.RealNodeGPUs
	}
	fmt.Fprintf(out, "gpufleet demo: %s, %.1f h of request rates, replayed in %v (%.0f times real speed): peak %.0f requests/s, mean %.1f\n",
		res.TraceName, tr.Duration().Hours(), sched.Duration(), sched.Speed, sched.Peak(), sched.Mean())
	if err := replay(ctx, o, res); err != nil {
		return err
	}
	paths, err := WriteOutputs(o.Out, res)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := cost.WriteTable(out, res.Cost); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrequests: %d sent, %d failed\n", res.Sent, res.Failed)
	fmt.Fprintf(out, "\nwritten:\n")
	for _, p := range append(paths, pricesPath) {
		fmt.Fprintf(out, "  %s\n", p)
	}
	fmt.Fprintf(out, "open %s in a browser for the plots and the cost report.\n", paths[0])
	return nil
}

// replay starts the system, replays the schedule, reads the cost report
// and stops everything, filling res.
func replay(ctx context.Context, o Options, res *Result) (err error) {
	out := o.Stdout
	began := time.Now()
	if res.RealNode {
		fmt.Fprintf(out, "starting the system: a local control plane, a real node, gpufleet from manifests/overlays/local\n")
	} else {
		fmt.Fprintf(out, "starting the system: a local control plane, the scheduler, the metrics adapter, %d simulated GPU nodes\n", len(res.Nodes))
	}
	s, err := stack.Start(ctx, stack.Options{
		Nodes:       res.Nodes,
		BinDir:      o.BinDir,
		AdapterArgs: []string{"--cost-period=" + o.CostPeriod.String()},
		Progress:    func(step string) { fmt.Fprintf(out, "  %s\n", step) },
		RealNode:    res.RealNode,
	})
	if err != nil {
		return err
	}
	if res.RealNode {
		res.Nodes = nil
		for _, n := range s.Nodes {
			res.Nodes = append(res.Nodes, n.GPUNode)
		}
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			path := filepath.Join(o.Out, FileDiagnostics)
			if werr := os.WriteFile(path, []byte(s.Diagnostics(40)), 0o644); werr == nil {
				err = fmt.Errorf("%w\n(the programs' logs and the cluster's state are in %s)", err, path)
			}
		}
		fmt.Fprintf(out, "stopping every process\n")
		err = errors.Join(err, s.Stop())
	}()
	// Load and sampling end before the stack stops.
	runCtx, cancel := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer func() { cancel(); background.Wait() }()

	if err := s.DeployModel(runCtx); err != nil {
		return err
	}
	load, err := s.NewLoad(runCtx)
	if err != nil {
		return err
	}
	background.Go(func() { load.Run(runCtx) })
	if err := s.CreateHPA(runCtx, res.MaxReplicas, o.TargetRPS); err != nil {
		return err
	}
	fmt.Fprintf(out, "  Deployment %s/%s serving, HPA at %d requests/s per pod, 1 to %d replicas (%.1f s)\n",
		stack.Namespace, stack.AppName, o.TargetRPS, res.MaxReplicas, time.Since(began).Seconds())
	fmt.Fprintf(out, "  load through the model router at %s (version 2 of %s: a %d %% canary)\n\n", s.RouterURL(), stack.ModelName, stack.CanaryPercent)

	prog := newProgress(s.NodeNames(), res.Schedule)
	_, _ = io.WriteString(out, prog.header())
	rec := s.NewRecorder(load)
	every := max(1, int(o.ProgressEvery/time.Second))
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 1; ; i++ {
		elapsed := time.Since(start)
		if elapsed >= res.Schedule.Duration() {
			break
		}
		load.SetRate(res.Schedule.RateAt(elapsed))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		smp := rec.Sample(runCtx)
		if i%every == 0 {
			_, _ = io.WriteString(out, prog.line(smp))
		}
	}
	load.SetRate(0)
	res.Samples = rec.Samples()
	res.Sent, res.Failed, res.LastError = load.Sent(), load.Failed(), load.LastError()

	usage, err := s.CostUsage(ctx, began, time.Now())
	if err != nil {
		return err
	}
	p, err := prices()
	if err != nil {
		return err
	}
	if res.Cost, err = cost.BuildReport(usage, cost.ReportOptions{By: cost.ByWorkload, Prices: p}); err != nil {
		return err
	}
	res.CostByNode, err = cost.BuildReport(usage, cost.ReportOptions{By: cost.ByNode, Prices: p})
	return err
}

// traceName is the trace file's name with its directory, e.g.
// genai-qps/qps.csv.
func traceName(path string) string {
	return filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path))
}
