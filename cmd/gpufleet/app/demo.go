package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gpufleet/gpufleet/internal/demo"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

type demoOptions struct {
	demo.Options

	// Set by Validate: whether --trace was given, and --duration and
	// --speed both.
	traceGiven, bothLengths bool
}

func newDemoOptions() *demoOptions {
	return &demoOptions{Options: demo.Options{
		Duration:      3 * time.Minute,
		MaxRPS:        40,
		TargetRPS:     5,
		MaxReplicas:   10,
		Out:           filepath.Join("_output", "demo"),
		CostPeriod:    2 * time.Second,
		ProgressEvery: 2 * time.Second,
		Node:          demo.NodeAuto,
	}}
}

func (o *demoOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Trace, "trace", "", "Request-rate trace to replay: CSV with timestamp_anon (s) and value (requests/s) columns, summed per sampling window. Default: the genai-qps trace, "+demo.DefaultTrace+" from the module root.")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "How long the replay of the whole trace takes.")
	fs.Float64Var(&o.Speed, "speed", 0, "Replay this many times faster than real time instead (sets the duration: the trace's length / speed).")
	fs.Float64Var(&o.MaxRPS, "max-rps", o.MaxRPS, "Requests/s sent at the trace's peak; the trace's rates are scaled to it.")
	fs.Int64Var(&o.TargetRPS, "target-rps-per-pod", o.TargetRPS, "The HPA's target requests_per_second per pod.")
	fs.Int32Var(&o.MaxReplicas, "max-replicas", o.MaxReplicas, "The HPA's maximum replicas (each takes a whole V100; 16 in the cluster).")
	fs.StringVar(&o.Out, "out", o.Out, "Directory for the report, plots, cost report, timeline and price table.")
	fs.DurationVar(&o.ProgressEvery, "progress-every", o.ProgressEvery, "How often a progress line is printed (whole seconds).")
	fs.StringVar(&o.Node, "node", o.Node, "Where the model pods run: real (a kubelet and containerd on this machine running gpufleet's images; root, make images), simulated (Node objects, programs as children of the demo), or auto (real where this machine can, else simulated, saying why).")
}

// Validate checks every flag and resolves the trace's path; it returns
// every problem, not just the first.
func (o *demoOptions) Validate() error {
	var errs []error
	if o.bothLengths {
		errs = append(errs, errors.New("--duration and --speed both set the replay's length: give one"))
	}
	if o.Speed < 0 {
		errs = append(errs, fmt.Errorf("--speed=%v: must be positive", o.Speed))
	}
	if o.Speed == 0 && (o.Duration < 5*time.Second || o.Duration > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("--duration=%v: must be between 5s and 24h", o.Duration))
	}
	if !(o.MaxRPS > 0) || o.MaxRPS > 1000 {
		errs = append(errs, fmt.Errorf("--max-rps=%v: must be above 0 and at most 1000", o.MaxRPS))
	}
	if o.TargetRPS < 1 {
		errs = append(errs, fmt.Errorf("--target-rps-per-pod=%d: must be at least 1", o.TargetRPS))
	}
	if o.MaxReplicas < 1 || o.MaxReplicas > 16 {
		errs = append(errs, fmt.Errorf("--max-replicas=%d: must be between 1 and 16 (the cluster's V100s)", o.MaxReplicas))
	}
	if o.Out == "" {
		errs = append(errs, errors.New("--out must not be empty"))
	}
	if o.ProgressEvery < time.Second {
		errs = append(errs, fmt.Errorf("--progress-every=%v: must be at least 1s", o.ProgressEvery))
	}
	if err := o.resolveTrace(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resolveTrace sets Trace to the default trace when --trace was not given,
// and checks the file is there.
func (o *demoOptions) resolveTrace() error {
	if !o.traceGiven {
		root, err := localcluster.ModuleRoot()
		if err != nil {
			return fmt.Errorf("run gpufleet demo from the gpufleet checkout, whose models/, bin/ and neighbouring trace it uses (%w)", err)
		}
		o.Trace = filepath.Clean(filepath.Join(root, demo.DefaultTrace))
	}
	if _, err := os.Stat(o.Trace); err != nil {
		if o.traceGiven {
			return fmt.Errorf("--trace=%s: %w", o.Trace, err)
		}
		return fmt.Errorf("no trace at %s: it is qps.csv of the GenAI serving trace (alibaba/clusterdata, cluster-trace-v2026-GenAI) "+
			"and belongs in shared/traces/genai-qps/ beside the gpufleet checkout; get it from https://github.com/alibaba/clusterdata, "+
			"or replay another trace with --trace FILE (CSV with timestamp_anon and value columns)", o.Trace)
	}
	return nil
}

func newDemoCommand() *cobra.Command {
	o := newDemoOptions()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on a local control plane under a replayed request-rate trace, then report GPU cost",
		Long: `Runs gpufleet on this machine, every component a child process of this
one: a local Kubernetes control plane with three simulated GPU nodes (two 8-GPU
V100 nodes, a 4-GPU T4 node on spot capacity), the GPUPack scheduler, the
metrics adapter feeding an HPA, a gpu-agent per node and a real inference
server per model pod, from bin/ (make demo builds them; missing ones are built
with go build). The genai-qps request-rate trace, 22 hours of a Stable
Diffusion service, is replayed in --duration (3 minutes) as real inference
requests, and a progress line every 2 s shows the load, the replicas, the GPUs
their pods got and the nodes' GPU utilization. At the end: report.html (plots
and the GPU cost report), PNG plots, cost.txt, cost.html, timeline.csv and the
illustrative prices.yaml in --out. Ctrl-C stops every process it started.
docs/demo.md says more.`,
		Example: `  make demo
  gpufleet demo --duration 90s --max-rps 30
  gpufleet demo --trace my-qps.csv --speed 600 --out /tmp/demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.traceGiven = cmd.Flags().Changed("trace")
			o.bothLengths = cmd.Flags().Changed("duration") && cmd.Flags().Changed("speed")
			if err := o.Validate(); err != nil {
				return err
			}
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			// The first Ctrl-C (or SIGTERM) stops the demo cleanly; a second
			// one kills it, and its children die with it.
			ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop()
			}()
			o.Stdout = cmd.OutOrStdout()
			err := demo.Run(ctx, o.Options)
			if err != nil && ctx.Err() != nil && parent.Err() == nil {
				return errors.New("interrupted: every process the demo started is stopped")
			}
			return err
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}
