package stack

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// Sample is the system's state at one moment.
type Sample struct {
	// At is the time since the recorder started.
	At time.Duration
	// Label is what the caller said it was doing (SetLabel).
	Label string
	// TargetRPS is the load generator's rate; SentRPS the requests it sent
	// per second since the previous sample.
	TargetRPS, SentRPS float64
	// ServedRPS is the Deployment's requests_per_second through the custom
	// metrics API (what the HPA scales on); NaN if there is none.
	ServedRPS float64
	// Replicas is the Deployment's desired replicas (the HPA's decision),
	// Ready its ready ones.
	Replicas, Ready int32
	// Utilization is each node's gpu_utilization (0..1), in the order of
	// the stack's nodes; NaN where the adapter has no value.
	Utilization []float64
	// PodGPUs holds, per node, the GPU indices (the gpufleet.io/gpu-indices
	// annotation, e.g. "3" or "0,1") of each model pod bound to it,
	// terminating ones included, lowest first.
	PodGPUs [][]string
	// Sent and Failed count the load generator's requests so far.
	Sent, Failed int64
}

// Recorder samples the model Deployment, the load and every node's
// gpu_utilization, and keeps the node of every model pod it has seen.
type Recorder struct {
	s     *Stack
	load  *loadgen.Generator
	start time.Time

	mu        sync.Mutex
	label     string
	samples   []Sample
	podNodes  map[string]string // model pod -> node, every pod ever seen bound
	lastSent  int64
	lastStamp time.Time
}

// NewRecorder returns a recorder of the stack under load; its clock starts
// now.
func (s *Stack) NewRecorder(load *loadgen.Generator) *Recorder {
	now := time.Now()
	return &Recorder{s: s, load: load, start: now, lastStamp: now, podNodes: map[string]string{}}
}

// SetLabel names what the caller does from now on; it is kept with each
// sample.
func (r *Recorder) SetLabel(label string) {
	r.mu.Lock()
	r.label = label
	r.mu.Unlock()
}

// Run samples every period until ctx ends, passing each sample to each
// (when not nil).
func (r *Recorder) Run(ctx context.Context, period time.Duration, each func(Sample)) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s := r.Sample(ctx)
			if each != nil && ctx.Err() == nil {
				each(s)
			}
		}
	}
}

// Sample reads the system's state, records it and returns it.
func (r *Recorder) Sample(ctx context.Context) Sample {
	now := time.Now()
	s := Sample{At: now.Sub(r.start), ServedRPS: r.s.ServedRPS()}
	s.Replicas, s.Ready, _ = r.s.Replicas(ctx)
	nodes := r.s.NodeNames()
	for _, n := range nodes {
		s.Utilization = append(s.Utilization, r.s.NodeUtilization(n))
	}
	s.PodGPUs = make([][]string, len(nodes))
	pods, err := r.s.ModelPods(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				continue
			}
			r.podNodes[p.Name] = p.Spec.NodeName
			for i, n := range nodes {
				if n == p.Spec.NodeName {
					s.PodGPUs[i] = append(s.PodGPUs[i], p.Annotations[names.AnnotationGPUIndices])
				}
			}
		}
	}
	for _, gpus := range s.PodGPUs {
		sort.Slice(gpus, func(i, j int) bool { return firstIndex(gpus[i]) < firstIndex(gpus[j]) })
	}
	if r.load != nil {
		s.TargetRPS = r.load.Rate()
		s.Sent, s.Failed = r.load.Sent(), r.load.Failed()
		s.SentRPS = float64(s.Sent-r.lastSent) / now.Sub(r.lastStamp).Seconds()
		r.lastSent, r.lastStamp = s.Sent, now
	}
	s.Label = r.label
	r.samples = append(r.samples, s)
	return s
}

// firstIndex is the first GPU index of a gpu-indices annotation, for
// sorting; unknown ones last.
func firstIndex(indices string) int {
	first, _, _ := strings.Cut(indices, ",")
	i, err := strconv.Atoi(first)
	if err != nil {
		return math.MaxInt
	}
	return i
}

// Samples returns every sample so far.
func (r *Recorder) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples...)
}

// MaxUtilization is the highest gpu_utilization sampled for node.
func (r *Recorder) MaxUtilization(node string) float64 {
	nodes := r.s.NodeNames()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := 0.0
	for _, s := range r.samples {
		for i, n := range nodes {
			if n == node && !math.IsNaN(s.Utilization[i]) {
				m = math.Max(m, s.Utilization[i])
			}
		}
	}
	return m
}

// NodesSeen returns the node of every model pod seen bound.
func (r *Recorder) NodesSeen() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.podNodes))
	for p, n := range r.podNodes {
		out[p] = n
	}
	return out
}
