// Package schedtest runs gpufleet's scheduler (kube-scheduler with the
// GPUPack plugin, exactly as cmd/scheduler-plugin builds it) in process
// against a local control plane, for integration tests and benchmarks.
package schedtest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	_ "github.com/gpufleet/gpufleet/apis/config/scheme" // GPUPackArgs in pluginConfig
	"github.com/gpufleet/gpufleet/internal/schedconfig"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// SchedulerName is the profile name gpufleet's manifests use.
const SchedulerName = schedconfig.SchedulerName

// GPUPackProfile is schedconfig.GPUPackProfile: the profile gpufleet
// recommends.
func GPUPackProfile(schedulerName, strategy string) string {
	return schedconfig.GPUPackProfile(schedulerName, strategy)
}

// MostAllocatedProfile is schedconfig.MostAllocatedProfile: the stock
// kube-scheduler's way to bin-pack GPUs.
func MostAllocatedProfile(schedulerName string) string {
	return schedconfig.MostAllocatedProfile(schedulerName)
}

// WriteConfig is schedconfig.WriteConfig: it writes a
// KubeSchedulerConfiguration with the given profiles and returns its path.
func WriteConfig(dir, kubeconfig string, leaderElect bool, profiles ...string) (string, error) {
	return schedconfig.WriteConfig(dir, kubeconfig, leaderElect, profiles...)
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
