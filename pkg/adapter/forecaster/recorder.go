// Package forecaster keeps the metrics adapter's request-rate history per
// workload and answers requests_per_second_forecast: the rate expected
// over the workload's start-up time, from the history's short-term trend
// and daily seasonality (package forecast, the code gpusim autoscale's
// forecast policy runs), never below the reactive rate.
//
// Every --forecast-record-period the Recorder sums requests_per_second
// over each Deployment's and StatefulSet's running pods and records it.
// The history survives a restart through --forecast-state-file (written
// every minute, atomically, and read at start); without a file it is
// rebuilt from scratch (trend after a few minutes, seasonality after a
// day).
package forecaster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
	"github.com/gpufleet/gpufleet/pkg/forecast"
)

// StartupAnnotation on a Deployment or StatefulSet sets its forecast
// horizon in seconds: how long a new replica takes to become ready.
const StartupAnnotation = "gpufleet.io/startup-seconds"

// Recorder records workload rates and forecasts them.
type Recorder struct {
	Cache  *cluster.Cache
	Source source.Source
	Store  *forecast.Store
	// Period between recordings; DefaultHorizon for workloads without the
	// annotation.
	Period, DefaultHorizon time.Duration
	// StateFile, when set, is loaded by Load and written every SaveEvery.
	StateFile string
	SaveEvery time.Duration
	Now       func() time.Time // default time.Now
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Key names a workload's series.
func Key(kind, namespace, name string) string { return namespace + "/" + kind + "/" + name }

// Load reads the state file, if any.
func (r *Recorder) Load() error {
	if r.StateFile == "" {
		return nil
	}
	return r.Store.LoadFile(r.StateFile)
}

// Run records every Period and saves every SaveEvery until ctx ends (and
// once more then).
func (r *Recorder) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	tick := time.NewTicker(r.Period)
	defer tick.Stop()
	lastSave := r.now()
	for {
		select {
		case <-ctx.Done():
			return r.save(logger)
		case <-tick.C:
		}
		if !r.Cache.Synced() {
			continue
		}
		if err := r.Record(ctx); err != nil {
			logger.Info("Recording request rates for the forecast", "err", err)
		}
		if r.StateFile != "" && r.now().Sub(lastSave) >= r.SaveEvery {
			lastSave = r.now()
			r.forgetDeleted()
			if err := r.save(logger); err != nil {
				logger.Info("Saving the forecast history", "file", r.StateFile, "err", err)
			}
		}
	}
}

func (r *Recorder) save(logger klog.Logger) error {
	if r.StateFile == "" {
		return nil
	}
	return r.Store.SaveFile(r.StateFile)
}

// owned groups running pods by their Deployment or StatefulSet.
func (r *Recorder) owned() map[string][]source.Pod {
	out := map[string][]source.Pod{}
	for _, p := range r.Cache.Pods("", nil) {
		if !cluster.Running(p) {
			continue
		}
		kind, name := r.Cache.Owner(p)
		if kind != "Deployment" && kind != "StatefulSet" {
			continue
		}
		k := Key(kind, p.Namespace, name)
		out[k] = append(out[k], source.Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName})
	}
	return out
}

// Record records the current rate of every workload with a running pod
// that has one.
func (r *Recorder) Record(ctx context.Context) error {
	groups := r.owned()
	var pods []source.Pod
	var keys []string
	for k, ps := range groups {
		for _, p := range ps {
			pods = append(pods, p)
			keys = append(keys, k)
		}
	}
	if len(pods) == 0 {
		return nil
	}
	vals, oks, err := r.Source.PodValues(ctx, source.PodMetrics[source.RequestsPerSecond], pods, nil)
	if err != nil {
		return err
	}
	sums, seen := map[string]float64{}, map[string]bool{}
	for i, k := range keys {
		if oks[i] {
			sums[k] += vals[i].Value
			seen[k] = true
		}
	}
	t := r.now().Unix()
	var full error
	for k := range seen {
		if err := r.Store.Add(k, t, sums[k]); errors.Is(err, forecast.ErrFull) {
			full = fmt.Errorf("not recording %s: %w (--forecast-max-series)", k, err)
		}
	}
	return full
}

// forgetDeleted drops the series of workloads that no longer exist.
func (r *Recorder) forgetDeleted() {
	r.Store.Retain(func(key string) bool {
		ns, kind, name, ok := splitKey(key)
		if !ok {
			return false
		}
		_, found, err := r.Cache.Workload(kind, ns, name)
		return err == nil && found
	})
}

func splitKey(key string) (ns, kind, name string, ok bool) {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// Horizon is the workload's forecast horizon: its startup annotation, or
// def when it has none or a bad one.
func Horizon(annotations map[string]string, def time.Duration) time.Duration {
	v, ok := annotations[StartupAnnotation]
	if !ok {
		return def
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || !(s >= 0) || s > 86400 {
		return def
	}
	return time.Duration(s * float64(time.Second))
}

// Forecast is the workload's forecast rate given its reactive rate now:
// max(reactive, predicted). With no history it is the reactive rate.
func (r *Recorder) Forecast(w cluster.Workload, reactive float64) float64 {
	pred, ok := r.Store.Predict(Key(w.Kind, w.Namespace, w.Name), r.now().Unix(), Horizon(w.Annotations, r.DefaultHorizon))
	if !ok || math.IsNaN(pred) {
		return reactive
	}
	return math.Max(reactive, pred)
}

// Owner is the workload that controls pod, if a Deployment or StatefulSet.
func (r *Recorder) Owner(p *corev1.Pod) (cluster.Workload, bool) {
	kind, name := r.Cache.Owner(p)
	if kind != "Deployment" && kind != "StatefulSet" {
		return cluster.Workload{}, false
	}
	w, found, err := r.Cache.Workload(kind, p.Namespace, name)
	return w, found && err == nil
}
