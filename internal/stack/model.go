package stack

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/internal/schedconfig"
	"github.com/gpufleet/gpufleet/pkg/inference/backend"
	"github.com/gpufleet/gpufleet/pkg/inference/backend/backendtest"
	"github.com/gpufleet/gpufleet/pkg/inference/model"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	// Namespace holds the model's Deployment and HPA.
	Namespace = "serving"
	// AppName names the Deployment, its pods' app label and the HPA.
	AppName = "property-value"
	// ModelName is the shipped model (models/).
	ModelName = "property-value"
	// WideName is a wide MLP with the same input, see WriteModelRepository.
	WideName = "wide"
	// ServerPort is where the inference servers listen, on their pods'
	// addresses.
	ServerPort = 8000
	// RowsPerRequest is the rows of each inference request
	// (property-value's maximum batch).
	RowsPerRequest = 64
	// wideHidden is the wide model's hidden width: a 64-row batch takes a
	// few milliseconds on a 2-core machine.
	wideHidden = 2048
)

// WriteModelRepository writes into dir a model repository holding the
// shipped property-value model (a copy of models/property-value) and wide,
// an 8-2048-2048-1 MLP with random weights and the same input.
// property-value is too small to register on a simulated GPU: a 64-row
// batch runs in about 9 µs, and NVML (so the simulation) reports whole
// percents, so it would take hundreds of requests per second per GPU to
// show 1 % (docs/inference-server.md says so). wide's batches take
// milliseconds, so the load the HPA scales on shows as GPU utilization.
func WriteModelRepository(dir string) error {
	root, err := localcluster.ModuleRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.CopyFS(filepath.Join(dir, ModelName), os.DirFS(filepath.Join(root, "models", ModelName))); err != nil {
		return fmt.Errorf("copying the shipped model: %w", err)
	}
	widths := []int{8, wideHidden, wideHidden, 1}
	layers := backendtest.RandomStack(7, widths, []backend.Activation{backend.ReLU, backend.ReLU, backend.Identity})
	tensors := map[string]model.Tensor{}
	var cfg strings.Builder
	cfg.WriteString("name: " + WideName + "\nplatform: gpufleet-mlp\nmaxBatchSize: 64\nmaxQueueDelay: 2ms\n" +
		"inputs: [{name: features, datatype: FP32, shape: [8]}]\noutputs: [{name: y, datatype: FP32, shape: [1]}]\nlayers:\n")
	for i, l := range layers {
		w, b := "w"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		tensors[w] = model.Tensor{Shape: []int{l.In, l.Out}, Data: l.W}
		tensors[b] = model.Tensor{Shape: []int{l.Out}, Data: l.B}
		cfg.WriteString("- {weights: " + w + ", bias: " + b + ", activation: " + string(l.Activation) + "}\n")
	}
	data, err := model.EncodeSafetensors(tensors, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, WideName, "1"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, WideName, "1", model.WeightsFile), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, WideName, model.ConfigFile), []byte(cfg.String()), 0o644)
}

// Deployment serves the repository through gpufleet-scheduler: one whole
// V100 (16 or 32 GB) per pod, scraped by the adapter on the server's port.
func Deployment() *appsv1.Deployment {
	lbl := map[string]string{"app": AppName}
	one, grace := int32(1), int64(30)
	res := corev1.ResourceList{
		names.ResourceGPU:  resource.MustParse("1"),
		corev1.ResourceCPU: resource.MustParse("250m"),
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: AppName, Namespace: Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{
					names.AnnotationGPUModel:   "V100M16|V100M32",
					names.AnnotationScrape:     "true",
					names.AnnotationScrapePort: strconv.Itoa(ServerPort),
				}},
				Spec: corev1.PodSpec{
					SchedulerName:                 schedconfig.SchedulerName,
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "inference-server", Image: "gpufleet/inference-server",
						Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: ServerPort}},
						Resources: corev1.ResourceRequirements{Requests: res, Limits: res},
					}},
				},
			},
		},
	}
}

// HPA scales the Deployment between 1 and maxReplicas replicas to hold
// requests_per_second at targetRPS per pod, with no scale-up and a 5 s
// scale-down stabilization window (the default, 5 min, is for production).
func HPA(maxReplicas int32, targetRPS int64) *autoscalingv2.HorizontalPodAutoscaler {
	one, zero, down := int32(1), int32(0), int32(5)
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: AppName, Namespace: Namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: AppName},
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

// DeployModel creates the namespace and the Deployment, and waits until
// its first pod runs and is ready.
func (s *Stack) DeployModel(ctx context.Context) error {
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	d := Deployment()
	if s.real != nil {
		d = RealDeployment(s.repo)
	}
	if _, err := s.Client.AppsV1().Deployments(Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the model's Deployment: %w", err)
	}
	if _, err := noderunner.WaitRunning(ctx, s.Client, Namespace, "app="+AppName, 1, 60*time.Second); err != nil {
		return fmt.Errorf("the model's first pod: %w", err)
	}
	return nil
}

// CreateHPA creates the model's HorizontalPodAutoscaler (see HPA).
func (s *Stack) CreateHPA(ctx context.Context, maxReplicas int32, targetRPS int64) error {
	if _, err := s.Client.AutoscalingV2().HorizontalPodAutoscalers(Namespace).Create(ctx, HPA(maxReplicas, targetRPS), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the HPA: %w", err)
	}
	return nil
}

// NewLoad starts the model router (bin/model-router) in front of the
// model's ready pods and returns a load generator, at rate 0, whose
// requests all go through it, an equal share to each of the pods' models
// (property-value only on the real node): property-value's split between
// version 1 and the version 2 canary (CanaryPercent), wide to the same
// pods. One body serves both models (wide takes property-value's input);
// it is built from the model metadata, asked through the router. Run it
// to send.
func (s *Stack) NewLoad(ctx context.Context) (*loadgen.Generator, error) {
	if _, err := noderunner.WaitRunning(ctx, s.Client, Namespace, "app="+AppName, 1, 60*time.Second); err != nil {
		return nil, fmt.Errorf("no model pod to route to: %w", err)
	}
	models := []string{ModelName, WideName}
	if s.real != nil {
		// The real node's GPUs read idle whatever the servers do (see
		// RealDeployment), so wide's milliseconds of CPU per batch would
		// only compete with the node's own processes for two cores (and
		// overflow queues under load): property-value alone.
		models = models[:1]
	}
	base, err := s.startRouter(ctx, models)
	if err != nil {
		return nil, err
	}
	body, err := loadgen.V2Request(ctx, http.DefaultClient, base, ModelName, RowsPerRequest)
	if err != nil {
		return nil, err
	}
	if len(models) > 1 {
		if wide, err := loadgen.V2Request(ctx, http.DefaultClient, base, WideName, RowsPerRequest); err != nil || !bytes.Equal(wide, body) {
			return nil, fmt.Errorf("%s takes another request than %s: %v", WideName, ModelName, err)
		}
	}
	load := loadgen.New(10 * time.Second)
	load.SetBody(body)
	var urls []string
	for _, m := range models {
		urls = append(urls, base+"/v2/models/"+m+"/infer")
	}
	load.SetTargets(urls)
	return load, nil
}
