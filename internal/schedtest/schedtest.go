// Package schedtest runs gpufleet's scheduler (kube-scheduler with the
// GPUPack plugin, exactly as cmd/scheduler-plugin builds it) in process
// against a local control plane, for integration tests and benchmarks.
package schedtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	_ "github.com/gpufleet/gpufleet/apis/config/scheme" // GPUPackArgs in pluginConfig
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// SchedulerName is the profile name gpufleet's manifests use.
const SchedulerName = "gpufleet-scheduler"

// GPUPackProfile is the profile YAML gpufleet recommends (the manifests ship
// the same): GPUPack at every extension point with weight 10, and the
// default NodeResourcesFit and NodeResourcesBalancedAllocation scoring off,
// no cluster-default PodTopologySpread constraints (they spread a
// Deployment's replicas; a pod's own constraints still apply), GPUPack
// binding GPU pods (with their GPU indices, one API write).
func GPUPackProfile(schedulerName, strategy string) string {
	return fmt.Sprintf(`- schedulerName: %s
  plugins:
    multiPoint:
      enabled:
      - name: GPUPack
        weight: 10
    bind:
      enabled:
      - name: GPUPack
    score:
      disabled:
      - name: NodeResourcesFit
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: GPUPack
    args:
      strategy: %s
  - name: PodTopologySpread
    args:
      defaultingType: List
`, schedulerName, strategy)
}

// MostAllocatedProfile is the stock kube-scheduler's way to bin-pack GPUs:
// NodeResourcesFit scoring MostAllocated on nvidia.com/gpu (and the
// gpufleet.io/gpu-milli share), without GPUPack.
func MostAllocatedProfile(schedulerName string) string {
	return fmt.Sprintf(`- schedulerName: %s
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: nvidia.com/gpu
          weight: 1
        - name: gpufleet.io/gpu-milli
          weight: 1
`, schedulerName)
}

// WriteConfig writes a KubeSchedulerConfiguration with the given profiles
// (YAML list items) for a scheduler reaching the API server through
// kubeconfig, and returns its path.
func WriteConfig(dir, kubeconfig string, leaderElect bool, profiles ...string) (string, error) {
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 5000
  burst: 10000
leaderElection:
  leaderElect: %t
  resourceNamespace: kube-system
  resourceName: gpufleet-scheduler
profiles:
%s`, kubeconfig, leaderElect, strings.Join(profiles, ""))
	path := filepath.Join(dir, "scheduler-config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// Run runs the scheduler with the config file until ctx ends. It serves no
// HTTPS endpoint (secure port 0).
func Run(ctx context.Context, configFile string) error {
	opts := options.NewOptions()
	opts.ConfigFile = configFile
	opts.SecureServing.BindPort = 0
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cc, sched, err := app.Setup(ctx, opts, app.WithPlugin(gpupack.Name, gpupack.New))
	if err != nil {
		return fmt.Errorf("setting up the scheduler: %w", err)
	}
	return app.Run(ctx, cc, sched)
}

// GPUPod is a model pod for the named scheduler asking for whole GPUs
// (gpus > 0) or a share of one (milli > 0), and one CPU.
func GPUPod(namespace, name, schedulerName string, gpus, milli int64, annotations map[string]string) *corev1.Pod {
	limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	if gpus > 0 {
		limits[names.ResourceGPU] = *resource.NewQuantity(gpus, resource.DecimalSI)
	}
	if milli > 0 {
		limits[names.ResourceGPUMilli] = *resource.NewQuantity(milli, resource.DecimalSI)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: corev1.PodSpec{
			SchedulerName: schedulerName,
			Containers: []corev1.Container{{
				Name: "model", Image: "gpufleet/inference-server",
				Resources: corev1.ResourceRequirements{Limits: limits, Requests: limits},
			}},
		},
	}
}
