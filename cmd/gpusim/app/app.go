// Package app is gpusim's command line: options, validation and output.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/sim"
)

// Options are gpusim's flags.
type Options struct {
	Nodes, Pods string
	Policy      string
	Seed        uint64
	Inflation   float64
	JSON        bool
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Policy: "gpufleet", Seed: 42, Inflation: 1.3}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Nodes, "nodes", o.Nodes, "node list CSV (openb format: sn,cpu_milli,memory_mib,gpu,model; optional count)")
	fs.StringVar(&o.Pods, "pods", o.Pods, "pod list CSV (openb format: name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,creation_time,deletion_time])")
	fs.StringVar(&o.Policy, "policy", o.Policy, "placement policy: "+strings.Join(sim.PolicyNames(), ", "))
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the pod order, the inflation sample and node tie-breaks")
	fs.Float64Var(&o.Inflation, "inflation", o.Inflation, "submit pods until their GPU request reaches this factor of the cluster's GPUs")
	fs.BoolVar(&o.JSON, "json", o.JSON, "print the result as one JSON object")
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
	if _, ok := sim.Policies[o.Policy]; !ok {
		errs = append(errs, fmt.Errorf("--policy %q: use one of %s", o.Policy, strings.Join(sim.PolicyNames(), ", ")))
	}
	if o.Inflation <= 0 || o.Inflation > 100 {
		errs = append(errs, fmt.Errorf("--inflation %v: want a factor such as 1.3", o.Inflation))
	}
	return errors.Join(errs...)
}

// Main runs gpusim with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gpusim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := NewOptions()
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintln(stderr, "gpusim:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "gpusim:", err)
		return 1
	}
	return 0
}

// Run runs the experiment the options describe.
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
	res, err := sim.Experiment(ctx, nodes, pods, o.Policy, o.Seed, o.Inflation)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(res)
	}
	_, err = fmt.Fprintf(out, "policy=%s seed=%d gpus=%d scheduled=%d failed=%d alloc@100=%.2f%% alloc@130=%.2f%% frag@100=%.2f%% wall=%.1fs\n",
		res.Policy, res.Seed, res.TotalGPUs, res.PodsScheduled, res.PodsFailed, res.AllocPct[100], res.AllocPct[130], res.FragRatioPct[100], res.WallSeconds)
	return err
}
