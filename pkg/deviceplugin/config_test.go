package deviceplugin

import (
	"strings"
	"testing"
)

// validConfig is a config New accepts.
func validConfig() Config {
	return Config{
		NodeName: testNode, GPUs: dgx1(), Milli: true, Whole: true, Dir: "/var/lib/kubelet/device-plugins",
		PodResources: &fakePodResources{}, Pods: &fakePods{},
	}
}

// uuidOfLen returns a GPU UUID of n characters.
func uuidOfLen(n int) string { return "GPU-" + strings.Repeat("a", n-4) }

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{name: "no resource", change: func(c *Config) { c.Milli, c.Whole = false, false }, want: []string{"at least one resource"}},
		{name: "no pod-resources API", change: func(c *Config) { c.PodResources = nil }, want: []string{"pod-resources"}},
		{name: "no pod index", change: func(c *Config) { c.Pods = nil }, want: []string{"pod index"}},
		{name: "unknown mismatch policy", change: func(c *Config) { c.OnMismatch = "ignore" }, want: []string{`"ignore"`, OnMismatchRefuse, OnMismatchWarn}},
		{name: "CDI kind without vendor domain", change: func(c *Config) { c.Allocation.CDIKind = "nvidia/gpu" }, want: []string{`CDI kind "nvidia/gpu"`}},
		{name: "CDI kind without class", change: func(c *Config) { c.Allocation.CDIKind = "nvidia.com" }, want: []string{`CDI kind "nvidia.com"`}},
		{name: "CDI kind with empty class", change: func(c *Config) { c.Allocation.CDIKind = "nvidia.com/" }, want: []string{`CDI kind "nvidia.com/"`}},
		{name: "CDI kind with two slashes", change: func(c *Config) { c.Allocation.CDIKind = "nvidia.com/gpu/a100" }, want: []string{`CDI kind "nvidia.com/gpu/a100"`}},
		{name: "CDI kind starting with a dash", change: func(c *Config) { c.Allocation.CDIKind = "-nvidia.com/gpu" }, want: []string{`CDI kind "-nvidia.com/gpu"`}},
		{name: "CDI kind with a space", change: func(c *Config) { c.Allocation.CDIKind = "nvidia.com/g pu" }, want: []string{`CDI kind "nvidia.com/g pu"`}},
		{name: "relative MPS pipe directory", change: func(c *Config) { c.Allocation.MPS = MPSConfig{Enabled: true, PipeDir: "run/mps"} }, want: []string{`"run/mps"`, "absolute"}},
		{name: "MPS without pipe directory", change: func(c *Config) { c.Allocation.MPS = MPSConfig{Enabled: true} }, want: []string{"absolute"}},
		{name: "no GPUs", change: func(c *Config) { c.GPUs = nil }, want: []string{"no GPUs"}},
		{name: "duplicate UUIDs", change: func(c *Config) { c.GPUs[5].UUID = c.GPUs[2].UUID }, want: []string{"UUID", testUUID(2)}},
		{name: "duplicate indices", change: func(c *Config) { c.GPUs[5].Index = 2 }, want: []string{"index 2"}},
		{name: "GPU without UUID", change: func(c *Config) { c.GPUs[3].UUID = "" }, want: []string{"GPU 3", "no UUID"}},
		{name: "UUID too long for 63-character IDs", change: func(c *Config) { c.GPUs[4].UUID = uuidOfLen(59) }, want: []string{"GPU 4", uuidOfLen(59), "63"}},
		{name: "UUID with a comma", change: func(c *Config) { c.GPUs[0].UUID = "GPU-a,b" }, want: []string{"GPU 0", `"GPU-a,b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			p, err := New(cfg)
			if err == nil {
				t.Fatalf("New accepted the config (plugin %v)", p != nil)
			}
			if m := missing(err.Error(), tc.want...); m != nil {
				t.Errorf("error %q does not name %q", err, m)
			}
		})
	}
}

func TestNewNamesEveryProblem(t *testing.T) {
	cfg := validConfig()
	cfg.Milli, cfg.Whole = false, false
	cfg.PodResources, cfg.Pods = nil, nil
	cfg.OnMismatch = "ignore"
	cfg.Allocation = AllocationConfig{CDIKind: "nvidia/gpu", MPS: MPSConfig{Enabled: true, PipeDir: "run/mps"}}
	cfg.GPUs[7].UUID = cfg.GPUs[6].UUID

	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted the config")
	}
	want := []string{"at least one resource", "pod-resources", `"ignore"`, `CDI kind "nvidia/gpu"`, `"run/mps"`, testUUID(6)}
	if m := missing(err.Error(), want...); m != nil {
		t.Errorf("error %q does not name %q", err, m)
	}
}

func TestNewNamesEveryGPUProblem(t *testing.T) {
	cfg := validConfig()
	cfg.GPUs[1].UUID = cfg.GPUs[0].UUID
	cfg.GPUs[4].UUID = uuidOfLen(59)
	cfg.GPUs[6].UUID = ""

	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted the config")
	}
	if m := missing(err.Error(), testUUID(0), uuidOfLen(59), "GPU 6"); m != nil {
		t.Errorf("error %q does not name %q", err, m)
	}
}

func TestNewAcceptsConfigsAtTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{name: "UUID making 63-character milli IDs", change: func(c *Config) { c.GPUs[4].UUID = uuidOfLen(58) }},
		{name: "NVIDIA CDI kind", change: func(c *Config) { c.Allocation.CDIKind = "nvidia.com/gpu" }},
		{name: "simulated CDI kind", change: func(c *Config) { c.Allocation.CDIKind = SimCDIKind }},
		{name: "CDI kind with dashes and underscores", change: func(c *Config) { c.Allocation.CDIKind = "gpu-vendor.example.io/accel_v2" }},
		{name: "MPS off ignores its pipe directory", change: func(c *Config) { c.Allocation.MPS = MPSConfig{PipeDir: "run/mps"} }},
		{name: "MPS with an absolute pipe directory", change: func(c *Config) { c.Allocation.MPS = MPSConfig{Enabled: true, PipeDir: "/run/nvidia/mps"} }},
		{name: "one resource", change: func(c *Config) { c.Whole = false }},
		{name: "warn policy", change: func(c *Config) { c.OnMismatch = OnMismatchWarn }},
		{name: "one GPU without NVLinks", change: func(c *Config) { c.GPUs = []GPU{{Index: 0, UUID: testUUID(0), MemoryBytes: v100Memory}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			if _, err := New(cfg); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}
