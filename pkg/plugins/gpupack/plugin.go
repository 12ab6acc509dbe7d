// Package gpupack is the GPUPack scheduler plugin: it keeps a per-GPU ledger
// of every GPU node in milli-GPU, admits a pod to a node only if its whole
// GPUs or its share of one GPU fit there without over-committing any GPU and
// the node's GPU model is one the pod accepts, scores nodes with a
// fragmentation-aware strategy, and writes the GPUs it chose to the pod's
// gpufleet.io/gpu-indices annotation before binding. See README.md.
package gpupack

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/gpufleet/gpufleet/apis/config"
	configv1 "github.com/gpufleet/gpufleet/apis/config/v1"
	"github.com/gpufleet/gpufleet/apis/config/validation"
)

// Name is the plugin's name in KubeSchedulerConfiguration.
const Name = "GPUPack"

// GPUPack is the plugin.
type GPUPack struct {
	handle   fwk.Handle
	strategy Strategy
	ledger   *Ledger
	workload *Workload
	waste    wasteCache // GPUFleet's model of the current typical pods

	bindOnce sync.Once
	binds    bool // GPUPack is the profile's first Bind plugin

	// The largest node's allocatable CPU and milli-GPU seen (PreScore is
	// sequential; atomics keep the race detector's view simple).
	maxCPU, maxGPUMilli atomic.Int64
}

var (
	_ fwk.PreFilterPlugin   = &GPUPack{}
	_ fwk.FilterPlugin      = &GPUPack{}
	_ fwk.PreScorePlugin    = &GPUPack{}
	_ fwk.ScorePlugin       = &GPUPack{}
	_ fwk.ScoreExtensions   = &GPUPack{}
	_ fwk.ReservePlugin     = &GPUPack{}
	_ fwk.PreBindPlugin     = &GPUPack{}
	_ fwk.BindPlugin        = &GPUPack{}
	_ fwk.EnqueueExtensions = &GPUPack{}
)

// DefaultArgs are the args used when a profile gives none.
func DefaultArgs() *config.GPUPackArgs {
	var v1 configv1.GPUPackArgs
	configv1.SetDefaults_GPUPackArgs(&v1)
	var out config.GPUPackArgs
	_ = configv1.Convert_v1_GPUPackArgs_To_config_GPUPackArgs(&v1, &out)
	return &out
}

// New builds the plugin from its args (*config.GPUPackArgs; nil means the
// defaults).
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args := DefaultArgs()
	if obj != nil {
		a, ok := obj.(*config.GPUPackArgs)
		if !ok {
			return nil, fmt.Errorf("%s: args are of type %T, want *GPUPackArgs", Name, obj)
		}
		args = a
	}
	if errs := validation.ValidateGPUPackArgs(field.NewPath("args"), args); len(errs) > 0 {
		return nil, fmt.Errorf("%s: invalid args: %w", Name, errs.ToAggregate())
	}
	strategy, err := NewStrategy(args.Strategy)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	p := &GPUPack{
		handle:   h,
		strategy: strategy,
		ledger:   NewLedger(),
		workload: NewWorkload(int(args.WorkloadWindow), int(args.TypicalPodCoveragePercent)),
	}
	if h != nil && h.SharedInformerFactory() != nil {
		// A deleted pod's reservation goes with it. (Bound pods keep theirs
		// until then: the scheduler's cache may see the bound pod later than
		// this handler, and the reservation must cover the gap.)
		_, err := h.SharedInformerFactory().Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				if pod, ok := obj.(*corev1.Pod); ok {
					p.ledger.Forget(pod.UID)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("%s: watching pod deletions: %w", Name, err)
		}
	}
	klog.FromContext(ctx).V(2).Info("GPUPack plugin ready", "strategy", strategy.Name(), "workloadWindow", args.WorkloadWindow, "typicalPodCoveragePercent", args.TypicalPodCoveragePercent)
	return p, nil
}

// Name implements fwk.Plugin.
func (p *GPUPack) Name() string { return Name }

// Ledger is the plugin's GPU ledger (for the simulator and tests).
func (p *GPUPack) Ledger() *Ledger { return p.ledger }

// Workload is the plugin's learned workload (the simulator seeds it).
func (p *GPUPack) Workload() *Workload { return p.workload }

const stateKey fwk.StateKey = Name

// cycleState is what one scheduling attempt of a pod carries between
// extension points.
type cycleState struct {
	req     Request
	reasons *reasons
	cluster *Cluster

	mu     sync.Mutex
	choice map[string][]int // node -> GPUs its score was computed for
}

// Clone shares the state: nothing after PreFilter changes req, and choice is
// only a cache of strategy results.
func (s *cycleState) Clone() fwk.StateData { return s }

func readState(state fwk.CycleState) (*cycleState, *fwk.Status) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fwk.AsStatus(fmt.Errorf("reading %s state: %w", Name, err))
	}
	s, ok := d.(*cycleState)
	if !ok {
		return nil, fwk.AsStatus(fmt.Errorf("%s state is %T", Name, d))
	}
	return s, nil
}

// PreFilter reads the pod's GPU request; a malformed request or annotation
// makes the pod unschedulable with a message naming the bad value. Pods
// without a GPU request skip Filter (but are still scored: where a CPU-only
// pod lands changes how many GPUs stay usable).
func (p *GPUPack) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	r, err := RequestFromPod(pod)
	if err != nil {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, err.Error())
	}
	p.workload.ObservePod(pod.UID, r)
	state.Write(stateKey, &cycleState{req: r, reasons: newReasons(r), choice: map[string][]int{}})
	if !r.WantsGPU() {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return nil, nil
}

// PreFilterExtensions is nil: Filter reads the pods of the NodeInfo it is
// given, so pods the framework adds or removes there are already counted.
func (p *GPUPack) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter admits the node if its GPU model is allowed and its GPUs hold the
// request without over-committing any GPU.
func (p *GPUPack) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	n := p.ledger.Node(klog.FromContext(ctx), ni)
	return s.reasons.status(n)
}

// PreScore gathers what the strategy needs beyond each node.
func (p *GPUPack) PreScore(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	c := &Cluster{Typical: p.workload.Typical()}
	if _, ok := p.strategy.(gpuFleet); ok {
		c.waste = p.waste.get(c.Typical)
	}
	// The largest node's CPU and GPUs, over every node scored so far: a
	// scale for the strategies that weigh what is left on a node.
	for _, ni := range nodes {
		a := ni.GetAllocatable()
		if cpu := a.GetMilliCPU(); cpu > p.maxCPU.Load() {
			p.maxCPU.Store(cpu)
		}
		if g := gpuCount(a) * MilliPerGPU; g > p.maxGPUMilli.Load() {
			p.maxGPUMilli.Store(g)
		}
	}
	c.MaxCPU, c.MaxGPUMilli = p.maxCPU.Load(), p.maxGPUMilli.Load()
	s.cluster = c
	return nil
}

// Score rates the node with the strategy and remembers the GPUs it chose.
func (p *GPUPack) Score(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	s, st := readState(state)
	if st != nil {
		return 0, st
	}
	if s.cluster == nil {
		return 0, fwk.AsStatus(fmt.Errorf("%s: Score without PreScore", Name))
	}
	n := p.ledger.Node(klog.FromContext(ctx), ni)
	score, gpus := p.strategy.Score(s.cluster, n, s.req)
	s.mu.Lock()
	s.choice[n.Name] = gpus
	s.mu.Unlock()
	return score, nil
}

// ScoreExtensions implements fwk.ScorePlugin.
func (p *GPUPack) ScoreExtensions() fwk.ScoreExtensions { return p }

// NormalizeScore maps the strategy's raw scores to 0..100.
func (p *GPUPack) NormalizeScore(_ context.Context, _ fwk.CycleState, _ *corev1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	raw := make([]int64, len(scores))
	for i := range scores {
		raw[i] = scores[i].Score
	}
	p.strategy.Normalize(raw)
	for i := range scores {
		scores[i].Score = raw[i]
	}
	return nil
}

// Reserve takes the pod's GPUs on the chosen node in the ledger, so no later
// pod gets them while this one is assumed but not yet bound.
func (p *GPUPack) Reserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	if !s.req.WantsGPU() {
		return nil
	}
	ni, err := p.handle.SnapshotSharedLister().NodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s: reading node %s: %w", Name, nodeName, err))
	}
	n := p.ledger.Node(klog.FromContext(ctx), ni)
	s.mu.Lock()
	gpus, ok := s.choice[nodeName]
	s.mu.Unlock()
	if !ok { // the only feasible node: nothing was scored
		c := s.cluster
		if c == nil {
			c = &Cluster{Typical: p.workload.Typical()}
		}
		_, gpus = p.strategy.Score(c, n, s.req)
	}
	if !n.CanTake(s.req, gpus) {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("GPUs %v of node %s no longer hold %s", gpus, nodeName, s.req))
	}
	p.ledger.Reserve(pod.UID, nodeName, gpus)
	klog.FromContext(ctx).V(4).Info("Reserved GPUs", "pod", klog.KObj(pod), "node", nodeName, "gpus", gpus, "request", s.req.String())
	return nil
}

// Unreserve gives the pod's GPUs back.
func (p *GPUPack) Unreserve(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, _ string) {
	p.ledger.Forget(pod.UID)
}
