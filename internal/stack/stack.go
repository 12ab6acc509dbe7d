// Package stack runs the whole gpufleet system on this machine, for the
// end-to-end test and `gpufleet demo`:
//
//   - etcd, kube-apiserver and kube-controller-manager (Deployment,
//     ReplicaSet and HPA controllers, HPA sync every second): children of
//     this process through pkg/localcluster.
//   - bin/scheduler-plugin --config: the recommended GPUPack profile
//     (internal/schedconfig) as the second scheduler gpufleet-scheduler,
//     leader election off; a child process.
//   - bin/metrics-adapter: a child process registered as the custom and
//     external metrics APIs (internal/adaptertest).
//   - Simulated nodes (by default two 8-GPU V100 nodes, 16 and 32 GB, and a
//     4-GPU T4 node) have no kubelet: one internal/noderunner Runner per node
//     plays it, each in its own 127.N.0.0/16 block. Its Process workload runs
//     every pod bound to the node as a real program on the pod's address:
//     the node's gpu-agent pod (a pod object with
//     app.kubernetes.io/name=gpu-agent, bound to the node as a DaemonSet's
//     would be, so the adapter scrapes it) runs bin/gpu-agent --nvml=mock on
//     the node's simulation directory; model pods run bin/inference-server
//     --device=cpu, reporting their batches' run time as busy time of the
//     GPUs in their gpufleet.io/gpu-indices annotation, as their pod, to the
//     same directory. A deleted pod is reported not ready first, then its
//     program gets SIGTERM and drains before the pod object goes.
//   - The model (model.go): a Deployment of the inference server behind an
//     HPA on requests_per_second, and internal/loadgen sending real v2
//     inference requests, built from the server's model metadata, to the
//     ready pods it watches.
//
// Every process dies with this one, even on SIGKILL (PR_SET_PDEATHSIG), and
// Stop ends them all and removes the stack's temporary directory.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"

	configv1 "github.com/gpufleet/gpufleet/apis/config/v1"
	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// DefaultNodes returns the simulated cluster: two 8-GPU V100 nodes (16 and
// 32 GB) the model accepts, and a 4-GPU T4 node it must never land on.
func DefaultNodes() []localcluster.GPUNode {
	return []localcluster.GPUNode{
		{Name: "v100-a", Model: "V100M16", GPUs: 8},
		{Name: "v100-b", Model: "V100M32", GPUs: 8},
		{Name: "t4-a", Model: "T4", GPUs: 4},
	}
}

// Options configure a stack.
type Options struct {
	// Nodes are the simulated GPU nodes. Default DefaultNodes().
	Nodes []localcluster.GPUNode
	// BinDir holds gpufleet's and the control plane's binaries; missing
	// ones are built. Empty: localcluster.DefaultBinDir ($GPUFLEET_BIN_DIR
	// or bin/).
	BinDir string
	// Strategy is GPUPack's scoring strategy. Default GPUFleet, which
	// manifests/base/scheduler ships.
	Strategy string
	// AdapterArgs are extra metrics-adapter flags, e.g. --cost-period=2s.
	AdapterArgs []string
	// IPBlock is the 127.N.0.0/16 block of the first node's pods (the next
	// nodes take the next blocks). 0 picks one from the process id, away
	// from other tests' runners (127.0.x.y) and from other stacks.
	IPBlock byte
	// Progress, when set, is told each step of Start as it completes.
	Progress func(step string)
	// RealNode runs the model on pkg/localcluster's real node instead of
	// simulated nodes: gpufleet's images under a real kubelet, installed
	// with `kubectl apply -k manifests/overlays/local` (Nodes, Strategy,
	// AdapterArgs and IPBlock do not apply: the manifests say). Needs root
	// and make images (RealNodeUnavailable says what is missing).
	RealNode bool
}

// Stack is the running system. Start it with Start; Stop it.
type Stack struct {
	// Cluster is the control plane; Client an admin client of it.
	Cluster *localcluster.Cluster
	Client  kubernetes.Interface
	// Metrics reads the custom metrics API, as the HPA controller does.
	Metrics cmclient.CustomMetricsClient
	// Binaries are the paths of the gpufleet programs it runs, by name.
	Binaries map[string]string
	// Nodes are the simulated nodes, in the order of Options.Nodes.
	Nodes []*Node

	dir        string // the stack's files, inside the cluster's directory
	repo       string // the inference servers' model repository
	adapterURL string
	routerURL  string // the model router's, once NewLoad started it
	// real is the real node, when the stack runs on one.
	real *localcluster.RealNode

	mu       sync.Mutex
	children []*child
	cancel   context.CancelFunc
	runners  sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// Start brings the system up: control plane, scheduler, adapter, and the
// nodes with their gpu-agents, which it waits for until they have labelled
// their nodes. On error nothing is left running.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if len(opts.Nodes) == 0 {
		opts.Nodes = DefaultNodes()
	}
	if opts.Strategy == "" {
		opts.Strategy = configv1.DefaultStrategy
	}
	if opts.IPBlock == 0 {
		opts.IPBlock = byte(100 + (os.Getpid()%40)*3)
	}
	if int(opts.IPBlock)+len(opts.Nodes) > 255 {
		return nil, fmt.Errorf("IP block %d leaves no room for %d nodes", opts.IPBlock, len(opts.Nodes))
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	began := time.Now()
	step := func(what string) { progress(fmt.Sprintf("%s (%.1f s)", what, time.Since(began).Seconds())) }

	s = &Stack{}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
			s = nil
		}
	}()
	if s.Binaries, err = binaries.Ensure(ctx, opts.BinDir, binaries.GPUAgent, binaries.InferenceServer, binaries.MetricsAdapter, binaries.SchedulerPlugin, binaries.ModelRouter); err != nil {
		return s, err
	}
	if opts.RealNode {
		return s, s.startReal(ctx, opts, step)
	}
	// The cluster's temporary directory holds the stack's files too: Stop
	// removes it, and the next start sweeps it if this process was killed.
	if s.Cluster, err = localcluster.Start(ctx, localcluster.Options{BinDir: opts.BinDir}); err != nil {
		return s, fmt.Errorf("starting the control plane: %w", err)
	}
	if s.Client, err = kubernetes.NewForConfig(s.Cluster.Config); err != nil {
		return s, err
	}
	if err = s.Cluster.StartControllerManager(ctx, localcluster.ControllerManagerOptions{
		Controllers: []string{"deployment-controller", "replicaset-controller", "horizontal-pod-autoscaler-controller"},
		ExtraArgs:   []string{"--horizontal-pod-autoscaler-sync-period=1s"},
	}); err != nil {
		return s, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	step("control plane up")
	s.dir = filepath.Join(s.Cluster.Dir, "stack")
	s.repo = filepath.Join(s.dir, "models")
	if err = WriteModelRepository(s.repo); err != nil {
		return s, err
	}
	if err = s.startScheduler(ctx, opts.Strategy); err != nil {
		return s, err
	}
	step("scheduler-plugin up")
	if err = s.startAdapter(ctx, opts.AdapterArgs); err != nil {
		return s, err
	}
	if s.Metrics, _, err = adaptertest.MetricsClients(s.Cluster.Config); err != nil {
		return s, err
	}
	step("metrics-adapter up, registered as the custom and external metrics APIs")

	runCtx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	for i, spec := range opts.Nodes {
		n, err := s.startNode(ctx, runCtx, spec, opts.IPBlock+byte(i))
		if n != nil {
			s.Nodes = append(s.Nodes, n)
		}
		if err != nil {
			return s, err
		}
	}
	if _, err = noderunner.WaitRunning(ctx, s.Client, agentNamespace, AgentSelector, len(s.Nodes), 60*time.Second); err != nil {
		return s, fmt.Errorf("gpu-agents: %w", err)
	}
	if err = s.waitAgentLabels(ctx); err != nil {
		return s, err
	}
	step(fmt.Sprintf("%d simulated GPU nodes up, each with its gpu-agent", len(s.Nodes)))
	return s, nil
}

// NodeNames returns the simulated nodes' names in order.
func (s *Stack) NodeNames() []string {
	out := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = n.Name
	}
	return out
}

// Node returns the simulated node called name, or nil.
func (s *Stack) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Stop ends every process the stack started (the nodes' programs first,
// then the scheduler and adapter, then the control plane), waits until each
// is reaped and removes the stack's directory. It is safe to call more
// than once, and on a stack that failed to start.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		cancel, children := s.cancel, s.children
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		s.runners.Wait()
		var errs []error
		if s.real != nil {
			if err := s.real.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping the real node: %w", err))
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			if err := children[i].proc.Stop(10 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", children[i].name, err))
			}
		}
		if s.Cluster != nil {
			if err := s.Cluster.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// Diagnostics returns what to look at when something went wrong: the last
// n lines of every program's log, the control plane's logs, the HPA's
// status and every pod.
func (s *Stack) Diagnostics(n int) string {
	var b strings.Builder
	s.mu.Lock()
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	for _, c := range children {
		fmt.Fprintf(&b, "%s log (last %d lines):\n%s\n", c.name, n, c.proc.LogTail(n))
	}
	for _, node := range s.Nodes {
		if node.programs != nil {
			fmt.Fprintf(&b, "node %s programs (last %d lines each):\n%s", node.Name, n, node.programs.LogTails(n))
		}
	}
	if s.real != nil {
		fmt.Fprintf(&b, "real node logs:\n%s", s.real.Logs(n))
	}
	if s.Cluster != nil {
		fmt.Fprintf(&b, "control plane logs:\n%s", s.Cluster.Logs(n))
	}
	if s.Client != nil {
		b.WriteString(s.dumpState())
	}
	return b.String()
}

// dumpState describes the HPA and every pod.
func (s *Stack) dumpState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	if hpa, err := s.Client.AutoscalingV2().HorizontalPodAutoscalers(Namespace).Get(ctx, AppName, metav1.GetOptions{}); err == nil {
		fmt.Fprintf(&b, "HPA status: %+v\n", hpa.Status)
	}
	pods, err := s.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return b.String()
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].Namespace+pods.Items[i].Name < pods.Items[j].Namespace+pods.Items[j].Name
	})
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s/%s node %q phase %s ready %v ip %s gpus %q deleting %v\n", p.Namespace, p.Name, p.Spec.NodeName,
			p.Status.Phase, noderunner.Ready(&p), p.Status.PodIP, p.Annotations[names.AnnotationGPUIndices], p.DeletionTimestamp != nil)
	}
	return b.String()
}
