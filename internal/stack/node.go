package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	// AgentSelector is how the adapter finds gpu-agent pods (its default).
	AgentSelector = "app.kubernetes.io/name=gpu-agent"
	// AgentPort is where each gpu-agent serves, on its pod's address.
	AgentPort      = 9400
	agentNamespace = "kube-system"
)

// Node is a simulated GPU node: a Node object, a simulation directory
// where its processes report GPU activity, and a node runner (the stand-in
// kubelet) running its pods as real programs on addresses 127.block.x.y.
type Node struct {
	localcluster.GPUNode
	// SimDir is the node's simulation directory (gpu-agent --sim-dir).
	SimDir   string
	programs *noderunner.Process
}

// LogTails returns the last n lines of every program the node ran.
func (n *Node) LogTails(lines int) string { return n.programs.LogTails(lines) }

// startNode creates the node, starts its runner until run ends (Stop waits
// for it to stop every program), and creates its gpu-agent pod, which the
// runner runs as bin/gpu-agent on the simulation.
func (s *Stack) startNode(ctx, run context.Context, spec localcluster.GPUNode, block byte) (*Node, error) {
	if _, err := localcluster.CreateGPUNode(ctx, s.Client, spec); err != nil {
		return nil, fmt.Errorf("creating node %s: %w", spec.Name, err)
	}
	n := &Node{GPUNode: spec, SimDir: filepath.Join(s.dir, "sim-"+spec.Name)}
	if err := os.MkdirAll(n.SimDir, 0o755); err != nil {
		return nil, err
	}
	n.programs = &noderunner.Process{
		LogDir:  filepath.Join(s.dir, "logs", spec.Name),
		Command: func(pod *corev1.Pod, ip string) (noderunner.Command, error) { return s.command(n, pod, ip) },
	}
	runner := noderunner.New(s.Client, []string{spec.Name}, n.programs, noderunner.WithIPBlock(block))
	s.runners.Go(func() { _ = runner.Run(run) })
	if _, err := s.Client.CoreV1().Pods(agentNamespace).Create(ctx, agentPod(spec.Name), metav1.CreateOptions{}); err != nil {
		return n, fmt.Errorf("creating the gpu-agent pod of %s: %w", spec.Name, err)
	}
	return n, nil
}

// command is what a node runs for a pod: the gpu-agent for the agent pod,
// the inference server for model pods, on the pod's address.
func (s *Stack) command(n *Node, pod *corev1.Pod, ip string) (noderunner.Command, error) {
	if pod.Labels["app.kubernetes.io/name"] == "gpu-agent" {
		addr := net.JoinHostPort(ip, strconv.Itoa(AgentPort))
		return noderunner.Command{
			Path: s.Binaries[binaries.GPUAgent],
			Args: []string{
				"--nvml=mock", "--node-name=" + n.Name, "--listen=" + addr,
				"--sim-dir=" + n.SimDir, "--sim-model=" + n.Model, "--sim-gpus=" + strconv.Itoa(n.GPUs),
				"--kubeconfig=" + s.Cluster.KubeconfigPath, "--label-node=true",
				"--pod-resources-socket=", // no kubelet: attribution by process, from the simulation's pod identities
				"--proc-root=/proc", "--interval=1s",
			},
			ReadyURL: "http://" + addr + "/readyz",
		}, nil
	}
	if pod.Labels["app"] != AppName {
		return noderunner.Command{}, fmt.Errorf("node %s runs no workload for pod %s/%s", n.Name, pod.Namespace, pod.Name)
	}
	gpus := pod.Annotations[names.AnnotationGPUIndices]
	if gpus == "" {
		return noderunner.Command{}, fmt.Errorf("pod %s/%s has no %s annotation: the scheduler writes it when it binds", pod.Namespace, pod.Name, names.AnnotationGPUIndices)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(ServerPort))
	return noderunner.Command{
		Path: s.Binaries[binaries.InferenceServer],
		Args: []string{
			"--model-repository=" + s.repo, "--listen=" + addr, "--device=cpu",
			"--gpu-sim-dir=" + n.SimDir, "--gpu-indices=" + gpus,
			// The load generator follows readiness through a watch: it stops
			// sending within milliseconds; 2 s is plenty.
			"--shutdown-delay=2s", "--shutdown-timeout=20s",
		},
		Env:      []string{"POD_NAME=" + pod.Name, "POD_NAMESPACE=" + pod.Namespace},
		ReadyURL: "http://" + addr + "/v2/health/ready",
	}, nil
}

// agentPod stands for the gpu-agent DaemonSet's pod on node: bound to it
// directly, as the DaemonSet controller does.
func agentPod(node string) *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-agent-" + node, Namespace: agentNamespace,
			Labels: map[string]string{"app.kubernetes.io/name": "gpu-agent"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "gpu-agent", Image: "gpufleet/gpu-agent"}},
		},
	}
}

// waitAgentLabels waits until every agent has labelled its node with the
// driver version only it knows (the node objects start with the others).
func (s *Stack) waitAgentLabels(ctx context.Context) error {
	var missing []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		missing = missing[:0]
		for _, n := range s.Nodes {
			node, err := s.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || node.Labels[names.LabelGPUDriverVersion] == "" {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes %v never got the gpu-agent's %s label: %w", missing, names.LabelGPUDriverVersion, err)
	}
	return nil
}
