package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedmetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	_ "github.com/gpufleet/gpufleet/apis/config/scheme" // GPUPackArgs in pluginConfig
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// profileYAML is the simulator's scheduler profile: kube-scheduler's node
// filters that matter for these objects (fit of CPU, memory and pod count,
// schedulability, taints) and GPUPack at every extension point it has, as
// the only score plugin. It goes through kube-scheduler's own config
// decoding, defaulting and validation.
const profileYAML = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: gpusim
  plugins:
    multiPoint:
      disabled:
      - name: "*"
    queueSort:
      enabled:
      - name: PrioritySort
    preFilter:
      enabled:
      - name: NodeResourcesFit
      - name: GPUPack
    filter:
      enabled:
      - name: NodeUnschedulable
      - name: NodeResourcesFit
      - name: TaintToleration
      - name: GPUPack
    preScore:
      enabled:
      - name: GPUPack
    score:
      enabled:
      - name: GPUPack
        weight: 1
    reserve:
      enabled:
      - name: GPUPack
    bind:
      enabled:
      - name: DefaultBinder
  pluginConfig:
  - name: GPUPack
    args:
      strategy: %s
      workloadWindow: %d
      typicalPodCoveragePercent: %d
`

// Scheduler places pods one at a time through a kube-scheduler framework
// (frameworkruntime) on an in-memory snapshot of the nodes: PreFilter,
// Filter on every node, PreScore, Score and NormalizeScore on the feasible
// ones, the best total score (ties: a per-seed random node order, as the FGD
// paper's simulator), then Reserve. Bound pods carry their GPU indices, so
// the plugin's ledger reads them like on a real cluster.
type Scheduler struct {
	fw       framework.Framework
	snapshot *cache.Snapshot
	plugin   *gpupack.GPUPack
	nodes    []fwk.NodeInfo
	rank     map[string]int
	logger   klog.Logger
}

// Placement is where a pod went.
type Placement struct {
	Node string
	GPUs []int
}

// NewScheduler builds the framework for the strategy (a gpupack strategy
// name) over the nodes; ties between nodes go to the lowest rank of a
// random order drawn from rng. The typical pods are learned from typical
// and then frozen.
func NewScheduler(ctx context.Context, nodes []Node, strategy string, typical []Pod, rng *rand.Rand) (*Scheduler, error) {
	cfgYAML := fmt.Sprintf(profileYAML, strategy, max(len(typical), 1), 95)
	obj, _, err := schedscheme.Codecs.UniversalDecoder().Decode([]byte(cfgYAML), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding the simulator's scheduler profile: %w", err)
	}
	cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("scheduler profile decoded to %T", obj)
	}
	objs := make([]*corev1.Node, len(nodes))
	for i, n := range nodes {
		objs[i] = NodeObject(n)
	}
	s := &Scheduler{snapshot: cache.NewSnapshot(nil, objs), rank: map[string]int{}, logger: klog.FromContext(ctx)}
	registry := plugins.NewInTreeRegistry()
	if err := registry.Register(gpupack.Name, func(ctx context.Context, args runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		p, err := gpupack.New(ctx, args, h)
		if err == nil {
			s.plugin = p.(*gpupack.GPUPack)
		}
		return p, err
	}); err != nil {
		return nil, err
	}
	schedmetrics.Register() // the framework instruments plugins with them
	client := fake.NewClientset()
	s.fw, err = frameworkruntime.NewFramework(ctx, registry, &cfg.Profiles[0],
		frameworkruntime.WithSnapshotSharedLister(s.snapshot),
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(client, 0)),
		frameworkruntime.WithParallelism(1),
	)
	if err != nil {
		return nil, fmt.Errorf("building the scheduler framework: %w", err)
	}
	w := s.plugin.Workload()
	for i, p := range typical {
		r, err := requestOfChecked(p)
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", p.Name, err)
		}
		w.ObservePod(types.UID(uidOf(i)), r)
	}
	w.Freeze()
	s.nodes, err = s.snapshot.NodeInfos().List()
	if err != nil {
		return nil, err
	}
	// The snapshot lists nodes in map order; ranks follow names, so a seed
	// always gives the same tie-breaks.
	slices.SortFunc(s.nodes, func(a, b fwk.NodeInfo) int { return strings.Compare(a.Node().Name, b.Node().Name) })
	for i, p := range rng.Perm(len(s.nodes)) {
		s.rank[s.nodes[i].Node().Name] = p
	}
	return s, nil
}

func uidOf(i int) string { return fmt.Sprintf("typical-%d", i) }

// requestOfChecked is the GPU request gpupack reads from the pod's object.
func requestOfChecked(p Pod) (gpupack.Request, error) {
	return gpupack.RequestFromPod(PodObject(p, ""))
}

// Plugin is the GPUPack plugin instance.
func (s *Scheduler) Plugin() *gpupack.GPUPack { return s.plugin }

// Nodes are the snapshot's nodes (the plugin's ledger reads them).
func (s *Scheduler) Nodes() []fwk.NodeInfo { return s.nodes }

// Schedule places pod, or says why it cannot be placed.
func (s *Scheduler) Schedule(ctx context.Context, pod *corev1.Pod) (Placement, *fwk.Status) {
	state := framework.NewCycleState()
	if _, st, _ := s.fw.RunPreFilterPlugins(ctx, state, pod); !st.IsSuccess() {
		return Placement{}, st
	}
	var feasible []fwk.NodeInfo
	for _, ni := range s.nodes {
		if st := s.fw.RunFilterPlugins(ctx, state, pod, ni); st.IsSuccess() {
			feasible = append(feasible, ni)
		}
	}
	if len(feasible) == 0 {
		return Placement{}, fwk.NewStatus(fwk.Unschedulable, "no node fits")
	}
	chosen := feasible[0].Node().Name
	if len(feasible) > 1 {
		if st := s.fw.RunPreScorePlugins(ctx, state, pod, feasible); !st.IsSuccess() {
			return Placement{}, st
		}
		scores, st := s.fw.RunScorePlugins(ctx, state, pod, feasible)
		if !st.IsSuccess() {
			return Placement{}, st
		}
		best := scores[0]
		for _, sc := range scores[1:] {
			if sc.TotalScore > best.TotalScore || sc.TotalScore == best.TotalScore && s.rank[sc.Name] < s.rank[best.Name] {
				best = sc
			}
		}
		chosen = best.Name
	}
	if st := s.fw.RunReservePluginsReserve(ctx, state, pod, chosen); !st.IsSuccess() {
		return Placement{}, st
	}
	gpus, _ := s.plugin.Ledger().Reserved(pod.UID)
	bound := pod.DeepCopy()
	bound.Spec.NodeName = chosen
	if len(gpus) > 0 {
		if bound.Annotations == nil {
			bound.Annotations = map[string]string{}
		}
		bound.Annotations[names.AnnotationGPUIndices] = gpupack.FormatIndices(gpus)
	}
	ni, err := s.snapshot.NodeInfos().Get(chosen)
	if err != nil {
		return Placement{}, fwk.AsStatus(err)
	}
	pi, err := framework.NewPodInfo(bound)
	if err != nil {
		return Placement{}, fwk.AsStatus(err)
	}
	ni.AddPodInfo(pi)
	s.plugin.Ledger().Forget(pod.UID)
	return Placement{Node: chosen, GPUs: gpus}, nil
}

// Remove takes a placed pod off its node (a departure).
func (s *Scheduler) Remove(pod *corev1.Pod, node string) error {
	ni, err := s.snapshot.NodeInfos().Get(node)
	if err != nil {
		return err
	}
	return ni.RemovePod(s.logger, pod)
}
