package stack

import (
	"maps"
	"slices"
	"sort"
	"testing"

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
