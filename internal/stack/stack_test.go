package stack

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
	"github.com/gpufleet/gpufleet/pkg/names"
)

func TestWriteModelRepository(t *testing.T) {
	dir := t.TempDir()
	if err := WriteModelRepository(dir); err != nil {
		t.Fatal(err)
	}
	models, err := model.Load(dir, model.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	pv, wide := models[ModelName], models[WideName]
	if pv == nil || wide == nil {
		t.Fatalf("models %v: want %s and %s", slices.Sorted(maps.Keys(models)), ModelName, WideName)
	}
	// One request body serves both: the same input.
	if pv.Default.In != wide.Default.In || wide.Default.In != 8 {
		t.Errorf("inputs %d and %d, want both 8", pv.Default.In, wide.Default.In)
	}
	if len(wide.Default.Layers) != 3 || wide.Default.Layers[1].In != wideHidden || wide.MaxBatchSize != RowsPerRequest {
		t.Errorf("wide: %d layers, hidden %d, max batch %d", len(wide.Default.Layers), wide.Default.Layers[1].In, wide.MaxBatchSize)
	}
}

func TestModelObjects(t *testing.T) {
	d := Deployment()
	tmpl := d.Spec.Template
	if tmpl.Spec.SchedulerName != "gpufleet-scheduler" || tmpl.Annotations[names.AnnotationGPUModel] != "V100M16|V100M32" ||
		tmpl.Annotations[names.AnnotationScrape] != "true" || tmpl.Labels["app"] != AppName {
		t.Errorf("Deployment template %+v", tmpl.ObjectMeta)
	}
	h := HPA(10, 5)
	if h.Spec.MaxReplicas != 10 || *h.Spec.MinReplicas != 1 || h.Spec.Metrics[0].Pods.Target.AverageValue.Value() != 5 ||
		h.Spec.Metrics[0].Pods.Metric.Name != "requests_per_second" || h.Spec.ScaleTargetRef.Name != d.Name {
		t.Errorf("HPA spec %+v", h.Spec)
	}
}

func TestPodGPUsSortByFirstIndex(t *testing.T) {
	gpus := []string{"10", "2,3", "", "0", "1"}
	sort.Slice(gpus, func(i, j int) bool { return firstIndex(gpus[i]) < firstIndex(gpus[j]) })
	if want := []string{"0", "1", "2,3", "10", ""}; !slices.Equal(gpus, want) {
		t.Errorf("sorted %v, want %v", gpus, want)
	}
}

// TestRealDeployment: the real node's Deployment keeps the model's
// placement and differs only where a real kubelet needs it.
func TestRealDeployment(t *testing.T) {
	d := RealDeployment("/srv/models")
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != "gpufleet/inference-server:dev" || spec.SchedulerName != "gpufleet-scheduler" || d.Spec.Template.Annotations[names.AnnotationGPUModel] == "" {
		t.Errorf("image %q scheduler %q annotations %v", c.Image, spec.SchedulerName, d.Spec.Template.Annotations)
	}
	// Its GPU comes from the device plugin (GPUFLEET_GPU_INDICES in the
	// container's environment), not from the pod telling the server.
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--gpu-indices") {
			t.Errorf("the server is told its GPUs by a flag: %s", a)
		}
	}
	for _, e := range c.Env {
		if e.Name == "GPUFLEET_GPU_INDICES" || e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && strings.Contains(e.ValueFrom.FieldRef.FieldPath, names.AnnotationGPUIndices) {
			t.Errorf("the pod sets the server's GPUs itself: %+v", e)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	req, lim := c.Resources.Requests[corev1.ResourceCPU], c.Resources.Limits[corev1.ResourceCPU]
	if req.MilliValue() != 100 || lim.MilliValue() != 1000 {
		t.Errorf("CPU request %v limit %v, want 100m and 1", req.String(), lim.String())
	}
	if gpus := c.Resources.Limits[names.ResourceGPU]; gpus.Value() != 1 {
		t.Errorf("GPU limit %v", gpus.String())
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].HostPath == nil || spec.Volumes[0].HostPath.Path != "/srv/models" || c.VolumeMounts[0].MountPath != "/models" {
		t.Errorf("model repository volume %+v mounts %+v", spec.Volumes, c.VolumeMounts)
	}
	// Deployment itself is untouched (its resource lists are shared maps).
	if cpu := Deployment().Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]; cpu.MilliValue() != 250 {
		t.Errorf("Deployment's CPU limit became %v", cpu.String())
	}
}
