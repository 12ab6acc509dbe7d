package autoscale

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// Model is the workload and cluster the replay assumes.
type Model struct {
	// ReplicaCapacity is the rate one ready replica serves at the latency
	// target (requests per second).
	ReplicaCapacity float64
	// GPUsPerReplica counts toward GPU-hours (from creation: a starting
	// pod holds its GPUs).
	GPUsPerReplica float64
	Startup        Startup
	// SyncPeriod is the controller's --horizontal-pod-autoscaler-sync-period
	// (15s). Syncs happen at SyncOffset + k x SyncPeriod.
	SyncPeriod, SyncOffset   time.Duration
	MinReplicas, MaxReplicas int32
	// Behavior is the HPA's spec.behavior (nil: none, the controller's
	// legacy path).
	Behavior               *autoscalingv2.HorizontalPodAutoscalerBehavior
	Tolerance              float64
	DownscaleStabilization time.Duration
	// InitialReplicas at second 0, all ready (0: what the first second's
	// demand needs at the policy's target, within min and max).
	InitialReplicas int32
	Seed            uint64
}

// DefaultModel returns the defaults of gpusim autoscale.
func DefaultModel() Model {
	return Model{
		ReplicaCapacity: 100, GPUsPerReplica: 1,
		Startup:    Startup{Median: 60 * time.Second, Spread: 0.25},
		SyncPeriod: DefaultSyncPeriod, SyncOffset: 7 * time.Second,
		MinReplicas: 1, MaxReplicas: 1000,
		Tolerance: DefaultTolerance, DownscaleStabilization: DefaultDownscaleStabilization,
		Seed: 1,
	}
}

// Validate returns every problem of the model.
func (m Model) Validate() error {
	var errs []error
	if !(m.ReplicaCapacity > 0) || math.IsInf(m.ReplicaCapacity, 0) {
		errs = append(errs, fmt.Errorf("replica capacity %v: want a rate > 0", m.ReplicaCapacity))
	}
	if m.GPUsPerReplica < 0 || math.IsNaN(m.GPUsPerReplica) {
		errs = append(errs, fmt.Errorf("GPUs per replica %v: want >= 0", m.GPUsPerReplica))
	}
	if err := m.Startup.Validate(); err != nil {
		errs = append(errs, err)
	}
	if m.SyncPeriod < time.Second || m.SyncPeriod%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sync period %v: want whole seconds, at least 1s", m.SyncPeriod))
	}
	if m.SyncOffset < 0 || m.SyncOffset >= m.SyncPeriod || m.SyncOffset%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sync offset %v: want whole seconds below the sync period", m.SyncOffset))
	}
	h := m.hpa()
	if err := h.Validate(); err != nil {
		errs = append(errs, err)
	}
	if m.InitialReplicas < 0 {
		errs = append(errs, fmt.Errorf("initial replicas %d: want >= 0", m.InitialReplicas))
	}
	return errors.Join(errs...)
}

func (m Model) hpa() *HPA {
	h := NewHPA(m.MinReplicas, m.MaxReplicas, m.Behavior)
	h.Tolerance, h.DownscaleStabilization = m.Tolerance, m.DownscaleStabilization
	return h
}

// Policy is one autoscaling setup: a metric pipeline and a target, and
// optionally the forecast metric beside the reactive one.
type Policy struct {
	Name     string
	Pipeline Pipeline
	// Target is the HPA's averageValue of requests_per_second per pod.
	Target float64
	// Forecast, when set, adds requests_per_second_forecast (same target).
	Forecast *ForecastPolicy
}

// ForecastPolicy is the forecast metric as the adapter serves it.
type ForecastPolicy struct {
	Config forecast.Config
	// Horizon is the workload's gpufleet.io/startup-seconds.
	Horizon time.Duration
	// RecordPeriod is how often the adapter records the reactive rate
	// into the history (10s).
	RecordPeriod time.Duration
}

// Validate returns every problem of the policy.
func (p Policy) Validate() error {
	var errs []error
	if err := p.Pipeline.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !(p.Target > 0) || math.IsInf(p.Target, 0) {
		errs = append(errs, fmt.Errorf("target %v: want a rate per replica > 0", p.Target))
	}
	if f := p.Forecast; f != nil {
		if err := f.Config.Validate(); err != nil {
			errs = append(errs, err)
		}
		if f.Horizon < 0 || f.Horizon > 24*time.Hour {
			errs = append(errs, fmt.Errorf("forecast horizon %v: want 0..24h", f.Horizon))
		}
		if f.RecordPeriod < time.Second || f.RecordPeriod%time.Second != 0 {
			errs = append(errs, fmt.Errorf("forecast record period %v: want whole seconds, at least 1s", f.RecordPeriod))
		}
	}
	return errors.Join(errs...)
}

// Window is a part of the trace, in seconds [From, To).
type Window struct {
	Name     string
	From, To int
}

// ReplayOptions ask for more than the totals.
type ReplayOptions struct {
	// Windows are accounted separately (e.g. tune and eval); the whole
	// trace is always accounted too.
	Windows []Window
	// SampleEvery > 0 records a timeline point every that many seconds.
	SampleEvery int
	// Decisions records every HPA sync (for tests).
	Decisions bool
}

// Replay plays the trace through the HPA with the policy.
func Replay(tr *Trace, m Model, p Policy, o ReplayOptions) (*Result, error) {
	if err := errors.Join(m.Validate(), p.Validate()); err != nil {
		return nil, err
	}
	n := tr.Seconds()
	if n == 0 {
		return nil, errors.New("the trace is empty")
	}
	for _, w := range o.Windows {
		if w.From < 0 || w.To > n || w.From >= w.To {
			return nil, fmt.Errorf("window %s [%d, %d) is not within the trace's %d seconds", w.Name, w.From, w.To, n)
		}
	}
	r := &replay{tr: tr, m: m, p: p, o: o, hpa: m.hpa(), obs: newObserver(p.Pipeline, tr.Rate),
		rng: rand.New(rand.NewPCG(m.Seed, 0x5eed))}
	if p.Forecast != nil {
		s, err := forecast.NewSeries(p.Forecast.Config)
		if err != nil {
			return nil, err
		}
		r.series = s
	}
	r.run()
	return r.result(), nil
}

type replay struct {
	tr  *Trace
	m   Model
	p   Policy
	o   ReplayOptions
	hpa *HPA
	obs *observer
	rng *rand.Rand

	series *forecast.Series
	// readyAt holds every pod's readiness second, ascending; the first
	// nReady are ready.
	readyAt []int
	nReady  int

	acc       []accounting
	timeline  []Point
	decisions []SyncRecord
}

func (r *replay) run() {
	m, p := r.m, r.p
	initial := m.InitialReplicas
	if initial == 0 {
		initial = int32(math.Ceil(r.tr.Rate[0] / p.Target))
	}
	initial = min(max(initial, m.MinReplicas), m.MaxReplicas)
	r.readyAt = make([]int, initial)
	r.nReady = int(initial)
	windows := append([]Window{{Name: "all", From: 0, To: r.tr.Seconds()}}, r.o.Windows...)
	r.acc = make([]accounting, len(windows))
	for i, w := range windows {
		r.acc[i].Window = w
	}
	sync, offset := int(m.SyncPeriod/time.Second), int(m.SyncOffset/time.Second)
	record := 0
	if p.Forecast != nil {
		record = int(p.Forecast.RecordPeriod / time.Second)
	}
	capacity := m.ReplicaCapacity
	for s, demand := range r.tr.Rate {
		for r.nReady < len(r.readyAt) && r.readyAt[r.nReady] <= s {
			r.nReady++
		}
		if record > 0 && s%record == 0 {
			if v, ok := r.obs.rate(s); ok {
				r.series.Add(int64(s), v)
			}
		}
		if s%sync == offset {
			r.sync(s)
		}
		need := demand / capacity
		short := math.Max(0, need-float64(r.nReady))
		total := float64(len(r.readyAt))
		for i := range r.acc {
			a := &r.acc[i]
			if s < a.Window.From || s >= a.Window.To {
				continue
			}
			a.underReplicaSeconds += short
			a.overRequests += short * capacity
			a.replicaSeconds += total
			a.demandReplicaSeconds += need
			a.requests += demand
		}
		if r.o.SampleEvery > 0 && s%r.o.SampleEvery == 0 {
			r.timeline = append(r.timeline, Point{Second: s, Needed: need, Ready: r.nReady, Replicas: len(r.readyAt)})
		}
	}
}

// sync runs the HPA at second s and applies its decision.
func (r *replay) sync(s int) {
	current := int32(len(r.readyAt))
	var metrics []Metric
	observed, ok := r.obs.rate(s)
	target := int64(math.Round(r.p.Target * 1000))
	unready := len(r.readyAt) - r.nReady
	reactive := PodsMetric{TargetMilli: target, Unready: unready}
	if ok && r.nReady > 0 {
		reactive.Values = perPod(observed, r.nReady)
	} else {
		reactive.Missing = r.nReady
	}
	metrics = append(metrics, reactive)
	predicted := math.NaN()
	if r.series != nil {
		f := PodsMetric{TargetMilli: target, Unready: unready}
		pred, pok := r.series.Predict(int64(s), r.p.Forecast.Horizon)
		if ok && r.nReady > 0 {
			v := observed
			if pok {
				v = math.Max(observed, pred)
			}
			predicted = v
			f.Values = perPod(v, r.nReady)
		} else {
			f.Missing = r.nReady
		}
		metrics = append(metrics, f)
	}
	d := r.hpa.Sync(time.Duration(s)*time.Second, current, metrics)
	if r.o.Decisions {
		r.decisions = append(r.decisions, SyncRecord{Second: s, Current: current, Proposal: d.Proposal, Desired: d.Desired, Observed: observed, Forecast: predicted, Ready: r.nReady})
	}
	r.scale(s, int(d.Desired))
}

// perPod spreads a workload's rate evenly over its ready pods (a Service
// balances over ready endpoints), in milli-units.
func perPod(total float64, pods int) []int64 {
	v := int64(math.Round(total / float64(pods) * 1000))
	out := make([]int64, pods)
	for i := range out {
		out[i] = v
	}
	return out
}

// scale creates or deletes pods to reach desired. New pods become ready
// after a start-up time; deletion takes the pods that are not ready first,
// then the most recently ready (the ReplicaSet controller's order).
func (r *replay) scale(s, desired int) {
	cur := len(r.readyAt)
	switch {
	case desired > cur:
		for range desired - cur {
			at := s + r.m.Startup.sample(r.rng)
			i := sort.SearchInts(r.readyAt, at+1)
			r.readyAt = append(r.readyAt, 0)
			copy(r.readyAt[i+1:], r.readyAt[i:])
			r.readyAt[i] = at
		}
		r.count(s, func(a *accounting) { a.scaleUps++; a.podsCreated += desired - cur })
	case desired < cur:
		r.readyAt = r.readyAt[:desired]
		r.nReady = min(r.nReady, desired)
		r.count(s, func(a *accounting) { a.scaleDowns++; a.podsDeleted += cur - desired })
	}
}

func (r *replay) count(s int, f func(*accounting)) {
	for i := range r.acc {
		if s >= r.acc[i].Window.From && s < r.acc[i].Window.To {
			f(&r.acc[i])
		}
	}
}
