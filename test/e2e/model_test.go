package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	namespace  = "serving"
	appName    = "property-value" // the Deployment, its pods' app label and the HPA
	modelName  = "property-value" // the shipped model (models/)
	wideName   = "wide"           // a wide MLP with the same input, see modelRepository
	serverPort = 8000
	agentPort  = 9400
	// agentSelector is how the adapter finds gpu-agent pods (its default).
	agentSelector = "app.kubernetes.io/name=gpu-agent"
	// wideHidden is the wide model's hidden width: a 64-row batch takes a few
	// milliseconds on this machine's two cores.
	wideHidden = 2048
)

// modelRepository returns a model repository holding the shipped
// property-value model (a copy of models/property-value) and wide, an
// 8-2048-2048-1 MLP with random weights and the same input. property-value
// is too small to register on a simulated GPU: a 64-row batch runs in about
// 9 µs, and NVML (so the simulation) reports whole percents, so it would
// take hundreds of requests per second per GPU to show 1 %
// (docs/inference-server.md says so). wide's batches take milliseconds, so
// the load the HPA scales on shows as GPU utilization.
func modelRepository(t *testing.T) string {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, modelName), os.DirFS(filepath.Join(root, "models", modelName))); err != nil {
		t.Fatalf("copying the shipped model: %v", err)
	}
	widths := []int{8, wideHidden, wideHidden, 1}
	layers := backendtest.RandomStack(7, widths, []backend.Activation{backend.ReLU, backend.ReLU, backend.Identity})
	tensors := map[string]model.Tensor{}
	var cfg strings.Builder
	cfg.WriteString("name: " + wideName + "\nplatform: gpufleet-mlp\nmaxBatchSize: 64\nmaxQueueDelay: 2ms\n" +
		"inputs: [{name: features, datatype: FP32, shape: [8]}]\noutputs: [{name: y, datatype: FP32, shape: [1]}]\nlayers:\n")
	for i, l := range layers {
		w, b := "w"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		tensors[w] = model.Tensor{Shape: []int{l.In, l.Out}, Data: l.W}
		tensors[b] = model.Tensor{Shape: []int{l.Out}, Data: l.B}
		cfg.WriteString("- {weights: " + w + ", bias: " + b + ", activation: " + string(l.Activation) + "}\n")
	}
	data, err := model.EncodeSafetensors(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, wideName, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, wideName, "1", model.WeightsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, wideName, model.ConfigFile), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// modelDeployment serves the repository through gpufleet-scheduler: one
// whole V100 (16 or 32 GB) per pod, scraped by the adapter on the server's
// port.
func modelDeployment() *appsv1.Deployment {
	lbl := map[string]string{"app": appName}
	one, grace := int32(1), int64(30)
	res := corev1.ResourceList{
		names.ResourceGPU:  resource.MustParse("1"),
		corev1.ResourceCPU: resource.MustParse("250m"),
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{
					names.AnnotationGPUModel:   "V100M16|V100M32",
					names.AnnotationScrape:     "true",
					names.AnnotationScrapePort: strconv.Itoa(serverPort),
				}},
				Spec: corev1.PodSpec{
					SchedulerName:                 schedtest.SchedulerName,
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "inference-server", Image: "gpufleet/inference-server",
						Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: serverPort}},
						Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
					}},
				},
			},
		},
	}
}

// modelHPA scales the Deployment between 1 and 4 replicas to hold
// requests_per_second at 5 per pod, with no scale-up and a 5 s scale-down
// stabilization window (the default, 5 min, is for production).
func modelHPA() *autoscalingv2.HorizontalPodAutoscaler {
	one, zero, down := int32(1), int32(0), int32(5)
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: appName},
			MinReplicas:    &one,
			MaxReplicas:    maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.PodsMetricSourceType,
				Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(targetRPS, resource.DecimalSI)},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &down},
			},
		},
	}
}

// agentPod stands for the gpu-agent DaemonSet's pod on node: bound to it
// directly, as the DaemonSet controller does.
func agentPod(node string) *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-agent-" + node, Namespace: "kube-system",
			Labels: map[string]string{"app.kubernetes.io/name": "gpu-agent"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "gpu-agent", Image: "gpufleet/gpu-agent"}},
		},
	}
}
