package app

import (
	"strings"
	"testing"
)

func TestOptionsValidateReportsEveryError(t *testing.T) {
	o := NewOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	o.NVML, o.Listen, o.Interval, o.LabelPeriod, o.PodRefresh = "cuda", "nowhere", 0, 0, 0
	err := o.Validate()
	for _, want := range []string{`--nvml="cuda"`, `--listen="nowhere"`, "--interval=0s", "--label-period=0s", "--pod-resources-refresh=0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	o = NewOptions()
	o.NVML, o.SimGPUs, o.SimModel, o.SimDir = NVMLMock, 0, "K80", ""
	err = o.Validate()
	for _, want := range []string{"--sim-gpus=0", `unknown GPU model "K80"`, "--sim-dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// Without a GPU, the real library fails with a message that says what to do,
// and never falls back to the simulation.
func TestRealNVMLMissingIsClear(t *testing.T) {
	for _, mode := range []string{NVMLAuto, NVMLReal} {
		o := NewOptions()
		o.NVML = mode
		lib, simNode, err := openNVML(o)
		if err == nil {
			_ = lib.Shutdown()
			t.Skipf("NVML loaded: this machine has a GPU driver")
		}
		if simNode != nil || !strings.Contains(err.Error(), "--nvml=mock") || !strings.Contains(err.Error(), "libnvidia-ml.so.1") {
			t.Errorf("--nvml=%s without a driver: %v (simulation %v)", mode, err, simNode != nil)
		}
	}
}
