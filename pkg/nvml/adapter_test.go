package nvml_test

import (
	"errors"
	"math"
	"testing"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/gpufleet/gpufleet/pkg/nvml"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim"
)

func TestNormalizeBusID(t *testing.T) {
	for in, want := range map[string]string{
		"00000000:06:00.0": "0000:06:00.0",
		"0000:8A:00.0":     "0000:8a:00.0",
		"00000001:06:00.0": "0001:06:00.0",
		" 0000:06:00.0 ":   "0000:06:00.0",
		"garbage":          "garbage",
		"":                 "",
	} {
		if got := nvml.NormalizeBusID(in); got != want {
			t.Errorf("NormalizeBusID(%q) = %q, want %q", in, got, want)
		}
	}
}

func simServer(t *testing.T) *server.Server {
	t.Helper()
	node, err := sim.New(sim.Options{NodeName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	return node.Interface().(*server.Server)
}

// Devices without utilization samples fall back to the driver's rate.
func TestUtilizationFallsBackWithoutSamples(t *testing.T) {
	srv := simServer(t)
	d := srv.Devices[0].(*server.Device)
	calls := 0
	d.GetSamplesFunc = func(gonvml.SamplingType, uint64) (gonvml.ValueType, []gonvml.Sample, gonvml.Return) {
		calls++
		return 0, nil, gonvml.ERROR_NOT_SUPPORTED
	}
	d.GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) {
		return gonvml.Utilization{Gpu: 37}, gonvml.SUCCESS
	}
	lib, err := nvml.New(srv)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s, err := lib.Devices()[0].Sample()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(s.Utilization-0.37) > 1e-9 {
			t.Fatalf("utilization %v, want 0.37", s.Utilization)
		}
	}
	if calls != 1 {
		t.Errorf("GetSamples called %d times; an unsupported call should be remembered", calls)
	}
}

// Samples are averaged, and each Sample only sees new ones.
func TestUtilizationAveragesNewSamples(t *testing.T) {
	srv := simServer(t)
	d := srv.Devices[0].(*server.Device)
	samples := []gonvml.Sample{{TimeStamp: 10, SampleValue: [8]byte{20}}, {TimeStamp: 20, SampleValue: [8]byte{60}}}
	d.GetSamplesFunc = func(_ gonvml.SamplingType, last uint64) (gonvml.ValueType, []gonvml.Sample, gonvml.Return) {
		var out []gonvml.Sample
		for _, s := range samples {
			if s.TimeStamp > last {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return 0, nil, gonvml.ERROR_NOT_FOUND
		}
		return gonvml.VALUE_TYPE_UNSIGNED_INT, out, gonvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) {
		return gonvml.Utilization{Gpu: 90}, gonvml.SUCCESS
	}
	lib, err := nvml.New(srv)
	if err != nil {
		t.Fatal(err)
	}
	dev := lib.Devices()[0]
	if s, _ := dev.Sample(); math.Abs(s.Utilization-0.40) > 1e-9 {
		t.Errorf("first sample %v, want the mean 0.40", s.Utilization)
	}
	samples = append(samples, gonvml.Sample{TimeStamp: 30, SampleValue: [8]byte{100}})
	if s, _ := dev.Sample(); math.Abs(s.Utilization-1) > 1e-9 {
		t.Errorf("second sample %v, want 1.0 from the one new sample", s.Utilization)
	}
	// No new samples: the driver's rate.
	if s, _ := dev.Sample(); math.Abs(s.Utilization-0.9) > 1e-9 {
		t.Errorf("third sample %v, want the rate 0.9", s.Utilization)
	}
}

// A GPU that fails while starting keeps its place and recovers.
func TestDeviceFailingAtStartRecovers(t *testing.T) {
	srv := simServer(t)
	d := srv.Devices[6].(*server.Device)
	good := d.GetNameFunc
	d.GetNameFunc = func() (string, gonvml.Return) { return "", gonvml.ERROR_GPU_IS_LOST }
	lib, err := nvml.New(srv)
	if err != nil {
		t.Fatalf("one lost GPU stops the library: %v", err)
	}
	devs := lib.Devices()
	if len(devs) != 8 {
		t.Fatalf("%d devices", len(devs))
	}
	if _, err := devs[6].Sample(); !nvml.IsGPULost(err) {
		t.Errorf("lost GPU sample: %v", err)
	}
	if _, err := devs[5].Sample(); err != nil {
		t.Errorf("healthy GPU: %v", err)
	}
	d.GetNameFunc = good
	if _, err := devs[6].Sample(); err != nil || devs[6].Info().Name == "" {
		t.Errorf("recovered GPU: %v, %+v", err, devs[6].Info())
	}
}

func TestLibraryNotFound(t *testing.T) {
	srv := simServer(t)
	srv.InitFunc = func() gonvml.Return { return gonvml.ERROR_LIBRARY_NOT_FOUND }
	if _, err := nvml.New(srv); err == nil || !errors.Is(err, nvml.ErrLibraryNotFound) {
		t.Errorf("New = %v, want ErrLibraryNotFound", err)
	}
}
