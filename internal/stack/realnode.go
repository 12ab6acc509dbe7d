package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// RealNodeGPUs is how many (simulated) GPUs the real node advertises.
const RealNodeGPUs = 8

// RealNodeImages are the images the real-node stack imports: gpufleet's
// components and the model server (make images builds them).
var RealNodeImages = []string{"gpu-agent", "metrics-adapter", "scheduler-plugin", "inference-server"}

// RealNodeUnavailable says why this machine cannot run the real-node stack
// (see localcluster.RealNodeSupported), or that make images has not built
// its images; nil when it can.
func RealNodeUnavailable() error { return localcluster.RealClusterUnavailable(RealNodeImages...) }

// startReal brings the stack up on the real node: localcluster's real
// cluster with gpufleet's images, and gpufleet installed as an admin would:
// `kubectl apply -k manifests/overlays/local`; the agent is the node's
// device plugin for its eight simulated GPUs.
func (s *Stack) startReal(ctx context.Context, opts Options, step func(string)) error {
	images, err := localcluster.ImagePaths(RealNodeImages...)
	if err != nil {
		return err
	}
	s.Cluster, s.real, err = localcluster.StartRealCluster(ctx, localcluster.Options{BinDir: opts.BinDir},
		localcluster.ControllerManagerOptions{ExtraArgs: []string{"--horizontal-pod-autoscaler-sync-period=1s"}},
		localcluster.RealNodeOptions{
			Images: images,
			// What NVIDIA's GPU feature discovery writes: the agent selects on it.
			Labels: map[string]string{"nvidia.com/gpu.present": "true"},
		})
	if err != nil {
		return err
	}
	if s.Client, err = kubernetes.NewForConfig(s.Cluster.Config); err != nil {
		return err
	}
	s.dir = filepath.Join(s.Cluster.Dir, "stack")
	s.repo = filepath.Join(s.dir, "models")
	if err = WriteModelRepository(s.repo); err != nil {
		return err
	}
	s.Nodes = []*Node{{GPUNode: localcluster.GPUNode{Name: s.real.Name, Model: "V100M16", GPUs: RealNodeGPUs}}}
	step(fmt.Sprintf("control plane and real node %s Ready (kubelet, containerd, kube-proxy)", s.real.Name))

	root, err := localcluster.ModuleRoot()
	if err != nil {
		return err
	}
	if err := s.Cluster.ApplyKustomization(ctx, opts.BinDir, filepath.Join(root, "manifests", "overlays", "local")); err != nil {
		return err
	}
	if err := s.waitComponents(ctx); err != nil {
		return err
	}
	if err := s.waitAgentLabels(ctx); err != nil {
		return err
	}
	if err := s.waitDevicePlugin(ctx); err != nil {
		return err
	}
	if s.Metrics, _, err = adaptertest.MetricsClients(s.Cluster.Config); err != nil {
		return err
	}
	step(fmt.Sprintf("gpufleet applied (kubectl apply -k manifests/overlays/local): agent (the node's device plugin: %d simulated V100s), adapter and scheduler ready", RealNodeGPUs))
	return nil
}

// waitDevicePlugin waits until the node's allocatable shows the GPUs the
// agent advertises as its device plugin.
func (s *Stack) waitDevicePlugin(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		node, err := s.Client.CoreV1().Nodes().Get(ctx, s.real.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		gpus, milli := node.Status.Allocatable[names.ResourceGPU], node.Status.Allocatable[names.ResourceGPUMilli]
		last = fmt.Sprintf("%s=%s %s=%s", names.ResourceGPU, gpus.String(), names.ResourceGPUMilli, milli.String())
		return gpus.Value() == RealNodeGPUs && milli.Value() == RealNodeGPUs*1000, nil
	})
	if err != nil {
		return fmt.Errorf("the agent advertising %d GPUs as the node's device plugin: %w (allocatable: %s)", RealNodeGPUs, err, last)
	}
	return nil
}

// waitComponents waits until the adapter and scheduler Deployments are
// ready and the adapter's APIService answers, and records an adapter pod's
// address for CostUsage.
func (s *Stack) waitComponents(ctx context.Context) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := s.real.Err(); err != nil {
			return false, err
		}
		for _, d := range []string{"gpufleet-metrics-adapter", "gpufleet-scheduler"} {
			dep, err := s.Client.AppsV1().Deployments("gpufleet-system").Get(ctx, d, metav1.GetOptions{})
			if err != nil {
				last = err
				return false, nil
			}
			if dep.Status.ReadyReplicas < *dep.Spec.Replicas {
				last = fmt.Errorf("%s: %d of %d replicas ready", d, dep.Status.ReadyReplicas, *dep.Spec.Replicas)
				return false, nil
			}
		}
		pods, err := s.Client.CoreV1().Pods("gpufleet-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=metrics-adapter"})
		if err != nil || len(pods.Items) == 0 {
			last = fmt.Errorf("no adapter pod: %v", err)
			return false, nil
		}
		for _, p := range pods.Items {
			if ip, ok := localcluster.PodIPOnBridge(&p); ok && p.DeletionTimestamp == nil {
				s.adapterURL = "https://" + net.JoinHostPort(ip.String(), "6443")
				return true, nil
			}
		}
		last = errors.New("no adapter pod with an address on the node's bridge")
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("gpufleet's components on the real node: %w (last: %v)", err, last)
	}
	return nil
}

// RealDeployment is Deployment for the real node: the inference-server
// image serving the stack's model repository (a read-only hostPath at
// /models: the shipped model and wide), the CPU backend, a readiness probe
// that gates its traffic, a drain on SIGTERM within the grace period. Its
// GPU comes from the device plugin: the server reads GPUFLEET_GPU_INDICES
// from the environment the plugin gives its container.
func RealDeployment(repo string) *appsv1.Deployment {
	d := Deployment()
	spec := &d.Spec.Template.Spec
	ctr := &spec.Containers[0]
	ctr.Image = "gpufleet/inference-server:dev"
	ctr.Args = []string{"--model-repository=/models", "--listen=:" + strconv.Itoa(ServerPort), "--device=cpu",
		"--shutdown-delay=3s", "--shutdown-timeout=20s"}
	ctr.Env = []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/v2/health/ready", Port: intstr.FromString("http")}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
	// A tenth of a core requested, so that eight replicas and gpufleet's
	// own pods fit the node's two cores, and a whole core as the limit:
	// wide's 64-row batches take tens of milliseconds of CPU, and a
	// 100m limit's throttling turned a load step into queue overflows.
	mem := resource.MustParse("256Mi")
	ctr.Resources.Requests, ctr.Resources.Limits = ctr.Resources.Requests.DeepCopy(), ctr.Resources.Limits.DeepCopy()
	ctr.Resources.Requests[corev1.ResourceCPU], ctr.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("100m"), resource.MustParse("1")
	ctr.Resources.Requests[corev1.ResourceMemory], ctr.Resources.Limits[corev1.ResourceMemory] = mem, mem
	ctr.VolumeMounts = []corev1.VolumeMount{{Name: "models", MountPath: "/models", ReadOnly: true}}
	hostDir := corev1.HostPathDirectory
	spec.Volumes = []corev1.Volume{{Name: "models", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: repo, Type: &hostDir}}}}
	return d
}
