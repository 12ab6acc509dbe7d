package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/binaries"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// startChild runs a gpufleet binary as a child of the test (it dies with the
// test binary, even on SIGKILL), stops it when the test ends and prints its
// log tail if the test failed.
func startChild(t *testing.T, name, bin string, args []string, dir string) *localcluster.Process {
	t.Helper()
	p, err := localcluster.StartProcess(name, bin, args, nil, filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("stopping %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log (last 40 lines):\n%s", name, p.LogTail(40))
		}
	})
	return p
}

// waitHTTPSOK polls url (a self-signed loopback server) until it answers
// 200, failing the test if the process exits first.
func waitHTTPSOK(t *testing.T, p *localcluster.Process, name, url string) {
	t.Helper()
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe of a self-signed test server
	defer insecure.CloseIdleConnections()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if done, err := p.Exited(); done {
			return false, fmt.Errorf("%s exited: %v", name, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := insecure.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s not ready at %s (last: %s): %v\n%s", name, url, last, err, p.LogTail(40))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return port
}

// schedulerStrategy is GPUPack's strategy under test: the default, which
// manifests/base/scheduler ships.
const schedulerStrategy = gpupack.StrategyGPUFleet

// startScheduler runs bin/scheduler-plugin with gpufleet's recommended
// profile as the second scheduler gpufleet-scheduler (leader election off),
// and waits for its /healthz.
func startScheduler(t *testing.T, c *localcluster.Cluster, bins map[string]string, dir string) {
	t.Helper()
	cfg, err := schedtest.WriteConfig(dir, c.KubeconfigPath, false, schedtest.GPUPackProfile(schedtest.SchedulerName, schedulerStrategy))
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	p := startChild(t, binaries.SchedulerPlugin, bins[binaries.SchedulerPlugin], []string{
		"--config=" + cfg,
		"--bind-address=127.0.0.1", "--secure-port=" + port,
		"--authentication-kubeconfig=" + c.KubeconfigPath,
		"--authorization-kubeconfig=" + c.KubeconfigPath,
	}, dir)
	waitHTTPSOK(t, p, binaries.SchedulerPlugin, "https://127.0.0.1:"+port+"/healthz")
}

// startAdapter runs bin/metrics-adapter (embedded source: it scrapes pods
// and gpu-agents every second), registers it as the custom and external
// metrics APIs and waits until they are Available.
func startAdapter(t *testing.T, c *localcluster.Cluster, bins map[string]string, dir string) {
	t.Helper()
	port := freePort(t)
	p := startChild(t, binaries.MetricsAdapter, bins[binaries.MetricsAdapter], adaptertest.Flags(c, port, dir), dir)
	waitHTTPSOK(t, p, binaries.MetricsAdapter, "https://127.0.0.1:"+strconv.Itoa(port)+"/readyz")
	if err := adaptertest.Register(t.Context(), c.Config, port, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

// simNode is a simulated GPU node: a Node object, a simulation directory
// where its processes report GPU activity, and a node runner (the stand-in
// kubelet) running its pods as real processes on addresses 127.block.x.y.
type simNode struct {
	localcluster.GPUNode
	simDir   string
	workload *noderunner.Process
}

// nodeEnv is what a simulated node's programs need.
type nodeEnv struct {
	client     kubernetes.Interface
	kubeconfig string
	bins       map[string]string
	repo       string // model repository of the inference servers
	dir        string
}

// startNode creates the node, starts its runner until ctx ends (done is
// called when the runner has stopped every program), and creates its
// gpu-agent pod, which the runner runs as bin/gpu-agent on the simulation.
func startNode(ctx context.Context, t *testing.T, e nodeEnv, spec localcluster.GPUNode, block byte, done func()) *simNode {
	t.Helper()
	if _, err := localcluster.CreateGPUNode(ctx, e.client, spec); err != nil {
		t.Fatal(err)
	}
	n := &simNode{GPUNode: spec, simDir: filepath.Join(e.dir, "sim-"+spec.Name)}
	if err := os.MkdirAll(n.simDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n.workload = &noderunner.Process{
		LogDir:  filepath.Join(e.dir, "logs-"+spec.Name),
		Command: func(pod *corev1.Pod, ip string) (noderunner.Command, error) { return n.command(e, pod, ip) },
	}
	runner := noderunner.New(e.client, []string{spec.Name}, n.workload, noderunner.WithIPBlock(block))
	go func() {
		defer done()
		_ = runner.Run(ctx)
	}()
	if _, err := e.client.CoreV1().Pods("kube-system").Create(ctx, agentPod(spec.Name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return n
}

// command is what the node runs for a pod: the gpu-agent for the agent pod,
// the inference server for model pods, on the pod's address.
func (n *simNode) command(e nodeEnv, pod *corev1.Pod, ip string) (noderunner.Command, error) {
	if pod.Labels["app.kubernetes.io/name"] == "gpu-agent" {
		addr := net.JoinHostPort(ip, strconv.Itoa(agentPort))
		return noderunner.Command{
			Path: e.bins[binaries.GPUAgent],
			Args: []string{
				"--nvml=mock", "--node-name=" + n.Name, "--listen=" + addr,
				"--sim-dir=" + n.simDir, "--sim-model=" + n.Model, "--sim-gpus=" + strconv.Itoa(n.GPUs),
				"--kubeconfig=" + e.kubeconfig, "--label-node=true",
				"--pod-resources-socket=", // no kubelet: attribution by process, from the simulation's pod identities
				"--proc-root=/proc", "--interval=1s",
			},
			ReadyURL: "http://" + addr + "/readyz",
		}, nil
	}
	if pod.Labels["app"] != appName {
		return noderunner.Command{}, fmt.Errorf("node %s runs no workload for pod %s/%s", n.Name, pod.Namespace, pod.Name)
	}
	gpus := pod.Annotations[names.AnnotationGPUIndices]
	if gpus == "" {
		return noderunner.Command{}, fmt.Errorf("pod %s/%s has no %s annotation: the scheduler writes it when it binds", pod.Namespace, pod.Name, names.AnnotationGPUIndices)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(serverPort))
	return noderunner.Command{
		Path: e.bins[binaries.InferenceServer],
		Args: []string{
			"--model-repository=" + e.repo, "--listen=" + addr, "--device=cpu",
			"--gpu-sim-dir=" + n.simDir, "--gpu-indices=" + gpus,
			// The load generator follows readiness through a watch: it stops
			// sending within milliseconds; 2 s is plenty.
			"--shutdown-delay=2s", "--shutdown-timeout=20s",
		},
		Env:      []string{"POD_NAME=" + pod.Name, "POD_NAMESPACE=" + pod.Namespace},
		ReadyURL: "http://" + addr + "/v2/health/ready",
	}, nil
}
