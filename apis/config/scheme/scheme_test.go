package scheme_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"

	"github.com/gpufleet/gpufleet/apis/config"
	_ "github.com/gpufleet/gpufleet/apis/config/scheme"
	"github.com/gpufleet/gpufleet/apis/config/validation"
)

func decode(t *testing.T, yaml string) (*schedconfig.KubeSchedulerConfiguration, error) {
	t.Helper()
	obj, _, err := schedscheme.Codecs.UniversalDecoder().Decode([]byte(yaml), nil, nil)
	if err != nil {
		return nil, err
	}
	cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
	if !ok {
		t.Fatalf("decoded %T", obj)
	}
	return cfg, nil
}

func gpuPackArgs(t *testing.T, cfg *schedconfig.KubeSchedulerConfiguration) *config.GPUPackArgs {
	t.Helper()
	for _, pc := range cfg.Profiles[0].PluginConfig {
		if pc.Name == "GPUPack" {
			args, ok := pc.Args.(*config.GPUPackArgs)
			if !ok {
				t.Fatalf("GPUPack args are %T, want *config.GPUPackArgs", pc.Args)
			}
			return args
		}
	}
	t.Fatal("no GPUPack pluginConfig")
	return nil
}

const profile = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: gpufleet-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: GPUPack
`

func TestDefaultsWhenArgsOmitted(t *testing.T) {
	cfg, err := decode(t, profile)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.GPUPackArgs{Strategy: "GPUFleet", WorkloadWindow: 10000, TypicalPodCoveragePercent: 95}
	if diff := cmp.Diff(want, gpuPackArgs(t, cfg)); diff != "" {
		t.Errorf("defaulted args (-want +got):\n%s", diff)
	}
}

func TestExplicitArgsDecodedAndPartlyDefaulted(t *testing.T) {
	cfg, err := decode(t, profile+`  pluginConfig:
  - name: GPUPack
    args:
      strategy: FGD
      workloadWindow: 500
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.GPUPackArgs{Strategy: "FGD", WorkloadWindow: 500, TypicalPodCoveragePercent: 95}
	if diff := cmp.Diff(want, gpuPackArgs(t, cfg)); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}

func TestUnknownFieldIsAnError(t *testing.T) {
	_, err := decode(t, profile+`  pluginConfig:
  - name: GPUPack
    args:
      strategy: FGD
      stratgey: BestFit
`)
	if err == nil || !strings.Contains(err.Error(), "stratgey") {
		t.Fatalf("decoding args with a misspelt field: err = %v, want a strict decoding error naming it", err)
	}
}

func TestValidationReportsEveryField(t *testing.T) {
	args := &config.GPUPackArgs{Strategy: "MostAllocated", WorkloadWindow: 0, TypicalPodCoveragePercent: 101}
	errs := validation.ValidateGPUPackArgs(field.NewPath("args"), args)
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	want := []string{"args.strategy", "args.workloadWindow", "args.typicalPodCoveragePercent"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("invalid fields (-want +got):\n%s\nerrors: %v", diff, errs)
	}
	if !strings.Contains(errs.ToAggregate().Error(), `"GPUFleet"`) {
		t.Errorf("unsupported strategy error should list the supported ones: %v", errs)
	}
	ok := &config.GPUPackArgs{Strategy: "BestFit", WorkloadWindow: 1, TypicalPodCoveragePercent: 100}
	if errs := validation.ValidateGPUPackArgs(field.NewPath("args"), ok); len(errs) != 0 {
		t.Errorf("valid args rejected: %v", errs)
	}
}
