// Package deviceplugintest runs gpu-agent's device plugin on the local real
// node (pkg/localcluster: a kubelet and containerd on this machine, GPUs
// simulated by the agent's mock NVML) and checks what containers really
// get: the tests of test/deviceplugin and make bench-deviceplugin share it.
package deviceplugintest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/pkg/agent/attribution"
	"github.com/gpufleet/gpufleet/pkg/deviceplugin"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// GPUs is how many GPUs the agent's simulated node has (a DGX-1).
const GPUs = 8

// Images are the images the environment imports (make images builds them).
var Images = []string{"gpu-agent", "metrics-adapter", "scheduler-plugin"}

// Env is a real node with gpufleet applied from manifests/overlays/local:
// gpu-agent as the node's device plugin for gpufleet.io/gpu-milli and
// nvidia.com/gpu, and gpufleet-scheduler.
type Env struct {
	Cluster *localcluster.Cluster
	Node    *localcluster.RealNode
	Client  kubernetes.Interface
	// PodResources reads the kubelet's allocations, as the plugin does.
	PodResources *attribution.PodResourcesClient
}

// Unavailable says why this machine cannot run Env, or nil.
func Unavailable() error { return localcluster.RealClusterUnavailable(Images...) }

// Start starts the real cluster, applies the local overlay and waits until
// the node advertises its GPUs through the agent. Stop it with Stop, also
// after an error.
func Start(ctx context.Context, binDir string) (*Env, error) {
	e := &Env{}
	images, err := localcluster.ImagePaths(Images...)
	if err != nil {
		return e, err
	}
	e.Cluster, e.Node, err = localcluster.StartRealCluster(ctx, localcluster.Options{BinDir: binDir}, localcluster.ControllerManagerOptions{},
		localcluster.RealNodeOptions{
			Images: images,
			// What NVIDIA's GPU feature discovery writes: the agent selects on it.
			Labels: map[string]string{"nvidia.com/gpu.present": "true"},
		})
	if err != nil {
		return e, err
	}
	if e.Client, err = kubernetes.NewForConfig(e.Cluster.Config); err != nil {
		return e, err
	}
	e.PodResources = attribution.NewPodResourcesClient(attribution.DefaultPodResourcesSocket)
	root, err := localcluster.ModuleRoot()
	if err != nil {
		return e, err
	}
	if err := e.Cluster.ApplyKustomization(ctx, binDir, filepath.Join(root, "manifests", "overlays", "local")); err != nil {
		return e, err
	}
	if err := e.WaitCapacity(ctx, GPUs, 3*time.Minute); err != nil {
		return e, err
	}
	return e, e.waitScheduler(ctx)
}

// Stop stops the node and the control plane.
func (e *Env) Stop() error {
	var errs []error
	if e.PodResources != nil {
		errs = append(errs, e.PodResources.Close())
	}
	if e.Node != nil {
		errs = append(errs, e.Node.Stop())
	}
	if e.Cluster != nil {
		errs = append(errs, e.Cluster.Stop())
	}
	return errors.Join(errs...)
}

// WaitCapacity waits until the node's allocatable shows healthy GPUs
// healthy whole GPUs and healthy x 1000 milli-GPU, as the device plugin
// advertises them.
func (e *Env) WaitCapacity(ctx context.Context, healthy int, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := e.Node.Err(); err != nil {
			return false, err
		}
		node, err := e.Client.CoreV1().Nodes().Get(ctx, e.Node.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		gpus, milli := node.Status.Allocatable[names.ResourceGPU], node.Status.Allocatable[names.ResourceGPUMilli]
		last = fmt.Sprintf("allocatable %s=%s %s=%s", names.ResourceGPU, gpus.String(), names.ResourceGPUMilli, milli.String())
		return gpus.Value() == int64(healthy) && milli.Value() == int64(healthy)*deviceplugin.MilliPerGPU, nil
	})
	if err != nil {
		return fmt.Errorf("node %s advertising %d GPUs: %w (last: %s)\nagent log:\n%s", e.Node.Name, healthy, err, last, e.AgentLog(ctx, 30))
	}
	return nil
}

func (e *Env) waitScheduler(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := e.Client.AppsV1().Deployments("gpufleet-system").Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas >= 1, nil
	})
}

// AgentPod returns the running gpu-agent pod.
func (e *Env) AgentPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := e.Client.CoreV1().Pods("gpufleet-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=gpu-agent"})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no running gpu-agent pod among %d", len(pods.Items))
}

// AgentMetricsURL is the running agent's /metrics.
func (e *Env) AgentMetricsURL(ctx context.Context) (string, error) {
	p, err := e.AgentPod(ctx)
	if err != nil {
		return "", err
	}
	ip, ok := localcluster.PodIPOnBridge(p)
	if !ok {
		return "", fmt.Errorf("agent pod %s has no address on the node's bridge", p.Name)
	}
	return "http://" + net.JoinHostPort(ip.String(), "9400") + "/metrics", nil
}

// AgentLog is the tail of the agent's log, for failure messages.
func (e *Env) AgentLog(ctx context.Context, lines int64) string {
	p, err := e.AgentPod(ctx)
	if err != nil {
		return err.Error()
	}
	raw, err := e.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
	if err != nil {
		return err.Error()
	}
	return string(raw)
}

// RestartAgent deletes the gpu-agent pod and waits until the DaemonSet's
// new one runs and the node advertises its GPUs again.
func (e *Env) RestartAgent(ctx context.Context) error {
	old, err := e.AgentPod(ctx)
	if err != nil {
		return err
	}
	if err := e.Client.CoreV1().Pods(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	// The new agent has registered both resources and sent the kubelet its
	// devices: until then the kubelet rejects pods asking for them (it did
	// so in this test before it waited for this).
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := e.AgentPod(ctx)
		if err != nil || p.UID == old.UID || p.Status.PodIP == "" {
			last = fmt.Sprintf("no new agent pod yet (%v)", err)
			return false, nil
		}
		m, err := e.ScrapePlugin(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if m.Counters["gpufleet_deviceplugin_registrations_total"] < 2 || m.Counters["gpufleet_deviceplugin_devices"] < GPUs*1001 {
			last = fmt.Sprintf("new agent: %v registrations, %v devices listed", m.Counters["gpufleet_deviceplugin_registrations_total"], m.Counters["gpufleet_deviceplugin_devices"])
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("a new gpu-agent pod serving the device plugin: %w (last: %s)", err, last)
	}
	return e.WaitCapacity(ctx, GPUs, 2*time.Minute)
}

// RestartKubelet restarts the node's kubelet and waits until the new one
// lists every pod of pods in its pod-resources API with their devices, and
// the device plugin has registered its resources with it again.
func (e *Env) RestartKubelet(ctx context.Context, pods []string) error {
	before, err := e.ScrapePlugin(ctx)
	if err != nil {
		return err
	}
	if err := e.Node.RestartKubelet(ctx); err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := e.Node.Err(); err != nil {
			return false, err
		}
		m, err := e.ScrapePlugin(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if n := m.Since(before, "gpufleet_deviceplugin_registrations_total"); n < 2 {
			last = fmt.Sprintf("the device plugin registered %v resources with the new kubelet", n)
			return false, nil
		}
		list, err := e.PodResources.List(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		listed := map[string]bool{}
		for _, p := range list {
			if p.GetNamespace() == Namespace {
				listed[p.GetName()] = len(p.GetContainers()) > 0 && len(p.GetContainers()[0].GetDevices()) > 0
			}
		}
		for _, name := range pods {
			if !listed[name] {
				last = fmt.Sprintf("pod %s is not listed with devices by the new kubelet", name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the restarted kubelet: %w (last: %s)", err, last)
	}
	return e.WaitCapacity(ctx, GPUs, 2*time.Minute)
}

// SetFault makes simulated GPU gpu fail (XID 79, fallen off the bus) or
// recover, through the running agent's simulation directory (an emptyDir:
// pkg/nvml/sim reads fault-gpu<N> files there). The agent keeps a GPU
// unhealthy for a minute after its last XID.
func (e *Env) SetFault(ctx context.Context, gpu int, failed bool) error {
	p, err := e.AgentPod(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(localcluster.KubeletRoot, "pods", string(p.UID), "volumes", "kubernetes.io~empty-dir", "sim", fmt.Sprintf("fault-gpu%d", gpu))
	if !failed {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return os.WriteFile(path, []byte("79"), 0o644)
}
