package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"sigs.k8s.io/yaml"

	"github.com/gpufleet/gpufleet/pkg/autoscale"
	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// AutoscaleOptions are the flags of gpusim autoscale.
type AutoscaleOptions struct {
	Trace        string
	Fill         string
	GapEdgeFloor float64
	// Policy is prometheus, gpufleet or forecast.
	Policy string
	// Target is the rate per replica the HPA aims at; 0 takes
	// TargetUtilization x ReplicaCapacity.
	Target, TargetUtilization float64
	// ReplicaCapacity 0: the trace's mean / AutoCapacityReplicas.
	ReplicaCapacity      float64
	AutoCapacityReplicas float64
	GPUsPerReplica       float64
	Startup              time.Duration
	StartupSpread        float64
	SyncPeriod           time.Duration
	MinReplicas          int
	MaxReplicas          int
	InitialReplicas      int
	Tolerance            float64
	DownscaleStab        time.Duration
	Behavior             string
	Seed                 uint64

	PromScrape, PromWindow         time.Duration
	GpufleetScrape, GpufleetWindow time.Duration
	MetricDelay                    time.Duration

	ForecastHorizon, ForecastBucket, ForecastTrend, ForecastRecord time.Duration
	ForecastDays                                                   int

	JSON          bool
	Plot          string
	SampleSeconds int
	Split         float64

	Study        bool
	Utilizations string
	Budget       float64
}

// NewAutoscaleOptions returns the defaults.
func NewAutoscaleOptions() *AutoscaleOptions {
	m := autoscale.DefaultModel()
	pp, gp := autoscale.PrometheusPipeline(), autoscale.GpufleetPipeline()
	fc := forecast.DefaultConfig()
	return &AutoscaleOptions{
		Fill: string(autoscale.FillError), Policy: "gpufleet", TargetUtilization: 0.7,
		AutoCapacityReplicas: 20, GPUsPerReplica: m.GPUsPerReplica,
		Startup: m.Startup.Median, StartupSpread: m.Startup.Spread, SyncPeriod: m.SyncPeriod,
		MinReplicas: int(m.MinReplicas), MaxReplicas: int(m.MaxReplicas),
		Tolerance: m.Tolerance, DownscaleStab: m.DownscaleStabilization, Seed: m.Seed,
		PromScrape: pp.ScrapeInterval, PromWindow: pp.RateWindow,
		GpufleetScrape: gp.ScrapeInterval, GpufleetWindow: gp.RateWindow,
		ForecastBucket: fc.Bucket, ForecastTrend: fc.TrendWindow, ForecastDays: fc.HistoryDays, ForecastRecord: 10 * time.Second,
		SampleSeconds: 60, Split: 0.5,
		Utilizations: utilizationGrid(0.3, 1, 0.01),
		Budget:       0.001,
	}
}

// AddFlags registers the options on fs.
func (o *AutoscaleOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Trace, "trace", o.Trace, "request-rate trace CSV: t_seconds,requests_per_second or genai-qps's timestamp_anon,value,...")
	fs.StringVar(&o.Fill, "fill", o.Fill, "gaps in the trace (empty rates, missing windows): error, hold, linear or zero")
	fs.Float64Var(&o.GapEdgeFloor, "gap-edge-floor", o.GapEdgeFloor, "take a row next to a gap whose rate is below this fraction of the median as part of the gap (a partly collected window); 0 keeps every row")
	fs.StringVar(&o.Policy, "policy", o.Policy, "prometheus (Prometheus + adapter pipeline), gpufleet (the adapter's 1 s scrapes) or forecast (gpufleet + requests_per_second_forecast)")
	fs.Float64Var(&o.Target, "target", o.Target, "HPA target: requests_per_second per replica (averageValue); 0 takes --target-utilization x --replica-capacity")
	fs.Float64Var(&o.TargetUtilization, "target-utilization", o.TargetUtilization, "target as a fraction of a replica's capacity")
	fs.Float64Var(&o.ReplicaCapacity, "replica-capacity", o.ReplicaCapacity, "requests per second one ready replica serves at the latency target; 0: the trace's mean / --auto-capacity-replicas")
	fs.Float64Var(&o.AutoCapacityReplicas, "auto-capacity-replicas", o.AutoCapacityReplicas, "with --replica-capacity 0, the replicas the trace's mean rate needs")
	fs.Float64Var(&o.GPUsPerReplica, "gpus-per-replica", o.GPUsPerReplica, "GPUs each replica holds (GPU-hours = replica-hours x this)")
	fs.DurationVar(&o.Startup, "startup", o.Startup, "median pod start-up time (creation to ready: scheduling, image pull, model load)")
	fs.Float64Var(&o.StartupSpread, "startup-spread", o.StartupSpread, "log-normal spread of the start-up time (0: always the median)")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "HPA sync period (--horizontal-pod-autoscaler-sync-period)")
	fs.IntVar(&o.MinReplicas, "min-replicas", o.MinReplicas, "HPA minReplicas")
	fs.IntVar(&o.MaxReplicas, "max-replicas", o.MaxReplicas, "HPA maxReplicas")
	fs.IntVar(&o.InitialReplicas, "initial-replicas", o.InitialReplicas, "ready replicas at the start; 0: what the first second needs at the target")
	fs.Float64Var(&o.Tolerance, "tolerance", o.Tolerance, "HPA tolerance (--horizontal-pod-autoscaler-tolerance); per-HPA tolerances go in --behavior")
	fs.DurationVar(&o.DownscaleStab, "downscale-stabilization", o.DownscaleStab, "controller's --horizontal-pod-autoscaler-downscale-stabilization")
	fs.StringVar(&o.Behavior, "behavior", o.Behavior, "HPA spec.behavior as YAML or JSON, or @FILE (strict; unset fields get the API defaults); empty: no behavior")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the start-up times")
	fs.DurationVar(&o.PromScrape, "prometheus-scrape-interval", o.PromScrape, "prometheus pipeline: Prometheus scrape interval")
	fs.DurationVar(&o.PromWindow, "prometheus-rate-window", o.PromWindow, "prometheus pipeline: the range of rate(...[range])")
	fs.DurationVar(&o.GpufleetScrape, "gpufleet-scrape-interval", o.GpufleetScrape, "gpufleet pipeline: the adapter's --scrape-interval")
	fs.DurationVar(&o.GpufleetWindow, "gpufleet-rate-window", o.GpufleetWindow, "gpufleet pipeline: the adapter's --rate-window")
	fs.DurationVar(&o.MetricDelay, "metric-delay", o.MetricDelay, "extra staleness of the metric on either pipeline (e.g. an adapter cache)")
	fs.DurationVar(&o.ForecastHorizon, "forecast-horizon", o.ForecastHorizon, "forecast: the horizon (gpufleet.io/startup-seconds); 0: --startup + --sync-period")
	fs.DurationVar(&o.ForecastBucket, "forecast-bucket", o.ForecastBucket, "forecast: history resolution")
	fs.IntVar(&o.ForecastDays, "forecast-history-days", o.ForecastDays, "forecast: days of history kept (1..8)")
	fs.DurationVar(&o.ForecastTrend, "forecast-trend-window", o.ForecastTrend, "forecast: how far back the short-term trend is fitted")
	fs.DurationVar(&o.ForecastRecord, "forecast-record-period", o.ForecastRecord, "forecast: how often the reactive rate is recorded")
	fs.BoolVar(&o.JSON, "json", o.JSON, "print the result (or the study) as one JSON object")
	fs.StringVar(&o.Plot, "plot", o.Plot, "draw demand vs ready replicas (or, with --study, the frontiers) into this PNG")
	fs.IntVar(&o.SampleSeconds, "sample-seconds", o.SampleSeconds, "timeline resolution of --plot and --json")
	fs.Float64Var(&o.Split, "split", o.Split, "the first fraction of the trace is the tuning part, the rest the evaluation part (reported separately)")
	fs.BoolVar(&o.Study, "study", o.Study, "sweep each policy's target, tune on the first part, compare the families at equal GPU-hours on the rest")
	fs.StringVar(&o.Utilizations, "utilizations", o.Utilizations, "study: swept targets as fractions of the replica capacity")
	fs.Float64Var(&o.Budget, "budget", o.Budget, "study: tuning aims at under-provisioned replica-seconds <= this fraction of the demand's replica-seconds")
}

// Validate returns every problem of the options.
func (o *AutoscaleOptions) Validate() error {
	var errs []error
	if o.Trace == "" {
		errs = append(errs, errors.New("--trace is required"))
	}
	if _, err := autoscale.ParseFill(o.Fill); err != nil {
		errs = append(errs, fmt.Errorf("--fill: %w", err))
	}
	if _, ok := policyKinds[o.Policy]; !ok {
		errs = append(errs, fmt.Errorf("--policy %q: use prometheus, gpufleet or forecast", o.Policy))
	}
	if o.Target < 0 || (o.Target == 0 && !(o.TargetUtilization > 0)) {
		errs = append(errs, errors.New("--target or --target-utilization must be > 0"))
	}
	if o.ReplicaCapacity < 0 || (o.ReplicaCapacity == 0 && !(o.AutoCapacityReplicas > 0)) {
		errs = append(errs, errors.New("--replica-capacity must be > 0 (or 0 with --auto-capacity-replicas > 0)"))
	}
	if o.MinReplicas > math.MaxInt32 || o.MaxReplicas > math.MaxInt32 || o.InitialReplicas > math.MaxInt32 {
		errs = append(errs, errors.New("replica counts must fit in 32 bits"))
	}
	if o.GapEdgeFloor < 0 || o.GapEdgeFloor >= 1 {
		errs = append(errs, fmt.Errorf("--gap-edge-floor %v: want a fraction in [0, 1)", o.GapEdgeFloor))
	}
	if o.SampleSeconds < 1 {
		errs = append(errs, fmt.Errorf("--sample-seconds %d: want >= 1", o.SampleSeconds))
	}
	if !(o.Split > 0 && o.Split < 1) {
		errs = append(errs, fmt.Errorf("--split %v: want a fraction in (0, 1)", o.Split))
	}
	if _, err := o.utilizations(); err != nil {
		errs = append(errs, err)
	}
	b, err := o.behavior()
	if err != nil {
		errs = append(errs, err)
	}
	// The model, pipelines and forecast validate themselves (capacity
	// needs the trace, so a placeholder stands in for an automatic one).
	if err := o.model(1, b).Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, kind := range []string{"prometheus", "forecast"} {
		if err := o.policy(kind, 1, time.Second).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--policy %s: %w", kind, err))
		}
	}
	return errors.Join(errs...)
}

var policyKinds = map[string]bool{"prometheus": true, "gpufleet": true, "forecast": true}

// utilizationGrid lists from..to by step, as --utilizations takes them.
func utilizationGrid(from, to, step float64) string {
	var parts []string
	for i := 0; from+float64(i)*step <= to+1e-9; i++ {
		parts = append(parts, strconv.FormatFloat(from+float64(i)*step, 'f', 2, 64))
	}
	return strings.Join(parts, ",")
}

func (o *AutoscaleOptions) utilizations() ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(o.Utilizations, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0) || v > 10 {
			return nil, fmt.Errorf("--utilizations: %q is not a fraction > 0", f)
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return nil, errors.New("--utilizations: want at least two values")
	}
	return out, nil
}

func (o *AutoscaleOptions) behavior() (*autoscalingv2.HorizontalPodAutoscalerBehavior, error) {
	if o.Behavior == "" {
		return nil, nil
	}
	data := []byte(o.Behavior)
	if path, ok := strings.CutPrefix(o.Behavior, "@"); ok {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("--behavior: %w", err)
		}
	}
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	if err := yaml.UnmarshalStrict(data, b); err != nil {
		return nil, fmt.Errorf("--behavior: %w", err)
	}
	return b, nil
}

func (o *AutoscaleOptions) model(capacity float64, b *autoscalingv2.HorizontalPodAutoscalerBehavior) autoscale.Model {
	m := autoscale.DefaultModel()
	m.ReplicaCapacity, m.GPUsPerReplica = capacity, o.GPUsPerReplica
	m.Startup = autoscale.Startup{Median: o.Startup, Spread: o.StartupSpread}
	m.SyncPeriod, m.SyncOffset = o.SyncPeriod, (o.SyncPeriod / 2).Truncate(time.Second)
	m.MinReplicas, m.MaxReplicas, m.InitialReplicas = int32(o.MinReplicas), int32(o.MaxReplicas), int32(o.InitialReplicas)
	m.Behavior, m.Tolerance, m.DownscaleStabilization, m.Seed = b, o.Tolerance, o.DownscaleStab, o.Seed
	return m
}

// policy builds the named policy at a target.
func (o *AutoscaleOptions) policy(kind string, target float64, horizon time.Duration) autoscale.Policy {
	p := autoscale.Policy{Name: kind, Target: target,
		Pipeline: autoscale.Pipeline{Kind: autoscale.PipelineGpufleet, ScrapeInterval: o.GpufleetScrape, RateWindow: o.GpufleetWindow, Delay: o.MetricDelay}}
	switch kind {
	case "prometheus":
		p.Pipeline = autoscale.Pipeline{Kind: autoscale.PipelinePrometheus, ScrapeInterval: o.PromScrape, RateWindow: o.PromWindow, Delay: o.MetricDelay}
	case "forecast":
		p.Forecast = &autoscale.ForecastPolicy{
			Config:  forecast.Config{Bucket: o.ForecastBucket, HistoryDays: o.ForecastDays, TrendWindow: o.ForecastTrend},
			Horizon: horizon, RecordPeriod: o.ForecastRecord,
		}
	}
	return p
}

func (o *AutoscaleOptions) horizon() time.Duration {
	if o.ForecastHorizon > 0 {
		return o.ForecastHorizon
	}
	return o.Startup + o.SyncPeriod
}

// AutoscaleMain runs gpusim autoscale with args and returns the exit code.
func AutoscaleMain(args []string, stdout, stderr io.Writer) int {
	return runCommand("gpusim autoscale", NewAutoscaleOptions(), args, nil, RunAutoscale, stdout, stderr)
}

// RunAutoscale replays the trace (or runs the study) as o describes.
func RunAutoscale(ctx context.Context, o *AutoscaleOptions, out io.Writer) error {
	fill, _ := autoscale.ParseFill(o.Fill)
	tr, err := autoscale.ReadTraceFile(o.Trace, autoscale.ReadOptions{Fill: fill, GapEdgeFloor: o.GapEdgeFloor})
	if err != nil {
		return err
	}
	capacity := o.ReplicaCapacity
	if capacity == 0 {
		capacity = tr.Mean() / o.AutoCapacityReplicas
		if !(capacity > 0) {
			return fmt.Errorf("%s: the mean rate is 0; set --replica-capacity", o.Trace)
		}
	}
	b, err := o.behavior()
	if err != nil {
		return err
	}
	m := o.model(capacity, b)
	if o.Study {
		return runStudy(ctx, o, tr, m, out)
	}
	target := o.Target
	if target == 0 {
		target = o.TargetUtilization * capacity
	}
	split := int(float64(tr.Seconds()) * o.Split)
	res, err := autoscale.Replay(tr, m, o.policy(o.Policy, target, o.horizon()), autoscale.ReplayOptions{
		Windows:     []autoscale.Window{{Name: "tune", From: 0, To: split}, {Name: "eval", From: split, To: tr.Seconds()}},
		SampleEvery: o.SampleSeconds,
	})
	if err != nil {
		return err
	}
	if o.Plot != "" {
		title := fmt.Sprintf("%s: %s, target %.4g/replica, capacity %.4g/replica", tr.Name, o.Policy, target, capacity)
		if err := autoscale.PlotTimeline(o.Plot, title, res); err != nil {
			return err
		}
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(struct {
			Trace           string  `json:"trace"`
			ReplicaCapacity float64 `json:"replica_capacity"`
			*autoscale.Result
		}{tr.Name, capacity, res})
	}
	fmt.Fprintf(out, "trace=%s seconds=%d mean_rps=%.4g gap_rows_filled=%d (of which gap edges %d) replica_capacity=%.4g target=%.4g\n", tr.Name, tr.Seconds(), tr.Mean(), tr.Gaps, tr.GapEdges, capacity, target)
	return res.WriteText(out)
}

func runStudy(ctx context.Context, o *AutoscaleOptions, tr *autoscale.Trace, m autoscale.Model, out io.Writer) error {
	us, _ := o.utilizations()
	h := o.horizon()
	fam := func(name, kind string) autoscale.Family {
		return autoscale.Family{Name: name, Policy: func(target float64) autoscale.Policy { return o.policy(kind, target, h) }}
	}
	res, err := autoscale.Study(ctx, tr, autoscale.StudyConfig{
		Model:        m,
		Families:     []autoscale.Family{fam("prom", "prometheus"), fam("reactive", "gpufleet"), fam("forecast", "forecast")},
		Utilizations: us, Split: o.Split, Budget: o.Budget,
	})
	if err != nil {
		return err
	}
	if o.Plot != "" {
		if err := autoscale.PlotFrontiers(o.Plot, res); err != nil {
			return err
		}
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(struct {
			ReplicaCapacity float64 `json:"replica_capacity"`
			*autoscale.StudyResult
		}{m.ReplicaCapacity, res})
	}
	return res.WriteText(out)
}
