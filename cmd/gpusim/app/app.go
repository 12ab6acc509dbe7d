// Package app is gpusim's command line: options, validation and output.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/sim"
)

// Options are gpusim's flags.
type Options struct {
	Nodes, Pods string
	// Policies to run, one after another (--policy a,b,c).
	Policies  []string
	Seed      uint64
	Inflation float64
	JSON      bool
	// CSV is a path prefix: PREFIX_allo_discrete.csv and
	// PREFIX_frag_ratio_discrete.csv in the FGD paper's analysis format.
	CSV string
	// Plot is a PNG drawing the allocation curves of every policy.
	Plot string
	// Replay plays arrivals and departures in trace time instead of the
	// paper's protocol; SampleSeconds is its reporting interval.
	Replay        bool
	SampleSeconds int64
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Policies: []string{"gpufleet"}, Seed: 42, Inflation: 1.3, SampleSeconds: 3600}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Nodes, "nodes", o.Nodes, "node list CSV (openb: sn,cpu_milli,memory_mib,gpu,model; optional count)")
	fs.StringVar(&o.Pods, "pods", o.Pods, "pod list CSV (openb: name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,creation_time,deletion_time])")
	fs.Func("policy", "placement policies, comma-separated: "+strings.Join(sim.PolicyNames(), ", ")+" (default gpufleet)", func(v string) error {
		o.Policies = strings.Split(v, ",")
		return nil
	})
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the pod order, the inflation sample and node tie-breaks")
	fs.Float64Var(&o.Inflation, "inflation", o.Inflation, "submit pods until their GPU request reaches this factor of the cluster's GPUs")
	fs.BoolVar(&o.JSON, "json", o.JSON, "print each result as one JSON object (one line per policy)")
	fs.StringVar(&o.CSV, "csv", o.CSV, "write PREFIX_allo_discrete.csv and PREFIX_frag_ratio_discrete.csv in the FGD paper's analysis format")
	fs.StringVar(&o.Plot, "plot", o.Plot, "draw allocation vs arrived workload of every policy into this PNG")
	fs.BoolVar(&o.Replay, "replay", o.Replay, "replay arrivals and departures in trace time (creation_time, deletion_time)")
	fs.Int64Var(&o.SampleSeconds, "sample-seconds", o.SampleSeconds, "replay: report the cluster every this many seconds of trace time")
}

// Validate returns every problem with the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Nodes == "" {
		errs = append(errs, errors.New("--nodes is required"))
	}
	if o.Pods == "" {
		errs = append(errs, errors.New("--pods is required"))
	}
	for _, p := range o.Policies {
		if _, ok := sim.Policies[p]; !ok {
			errs = append(errs, fmt.Errorf("--policy %q: use one of %s", p, strings.Join(sim.PolicyNames(), ", ")))
		}
	}
	if o.Inflation <= 0 || o.Inflation > 100 {
		errs = append(errs, fmt.Errorf("--inflation %v: want a factor such as 1.3", o.Inflation))
	}
	if o.SampleSeconds <= 0 {
		errs = append(errs, fmt.Errorf("--sample-seconds %d: want a positive interval", o.SampleSeconds))
	}
	if o.Replay && (o.CSV != "" || o.Plot != "") {
		errs = append(errs, errors.New("--csv and --plot draw the paper's protocol; with --replay use --json"))
	}
	return errors.Join(errs...)
}

// Main runs gpusim with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "autoscale" {
		return AutoscaleMain(args[1:], stdout, stderr)
	}
	usage := func(fs *flag.FlagSet) {
		fmt.Fprintln(stderr, "Usage: gpusim --nodes CSV --pods CSV [flags]   (placement)\n       gpusim autoscale --trace CSV [flags]     (autoscaling: gpusim autoscale -h, docs/autoscaling.md)")
		fs.PrintDefaults()
	}
	return runCommand("gpusim", NewOptions(), args, usage, Run, stdout, stderr)
}

// Run runs what the options describe.
func Run(ctx context.Context, o *Options, out io.Writer) error {
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	nodes, err := sim.ReadNodesFile(o.Nodes)
	if err != nil {
		return err
	}
	pods, err := sim.ReadPodsFile(o.Pods)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if o.Replay {
		for _, policy := range o.Policies {
			res, err := sim.Replay(ctx, nodes, pods, policy, o.Seed, o.SampleSeconds)
			if err != nil {
				return err
			}
			if o.JSON {
				err = enc.Encode(res)
			} else {
				_, err = fmt.Fprintf(out, "policy=%s gpus=%d arrived=%d scheduled=%d abandoned=%d pending_at_end=%d max_pending=%d mean_wait=%.0fs mean_alloc=%.2f%% wall=%.1fs\n",
					res.Policy, res.TotalGPUs, res.PodsArrived, res.PodsScheduled, res.PodsAbandoned, res.PodsPendingAtEnd, res.MaxPending, res.MeanWaitSeconds, res.MeanAllocPct, res.WallSeconds)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	var results []*sim.Result
	for _, policy := range o.Policies {
		res, err := sim.Experiment(ctx, nodes, pods, policy, o.Seed, o.Inflation)
		if err != nil {
			return err
		}
		results = append(results, res)
		if o.JSON {
			err = enc.Encode(res)
		} else {
			_, err = fmt.Fprintf(out, "policy=%s seed=%d gpus=%d scheduled=%d failed=%d alloc@100=%.2f%% alloc@130=%.2f%% frag@100=%.2f%% wall=%.1fs\n",
				res.Policy, res.Seed, res.TotalGPUs, res.PodsScheduled, res.PodsFailed, res.AllocPct[100], res.AllocPct[130], res.FragRatioPct[100], res.WallSeconds)
		}
		if err != nil {
			return err
		}
	}
	if o.CSV != "" {
		if err := writeCSV(o.CSV, podListName(o.Pods), o.Inflation, results); err != nil {
			return err
		}
	}
	if o.Plot != "" {
		if err := sim.PlotAllocation(o.Plot, podListName(o.Pods), results); err != nil {
			return err
		}
	}
	return nil
}
