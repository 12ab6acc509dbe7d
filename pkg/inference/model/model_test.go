package model

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"w": {Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"b": {Shape: []int{3}, Data: []float32{-1, 0.5, 1e-3}},
		"s": {Shape: []int{}, Data: []float32{7}},
	}
	data, err := EncodeSafetensors(in, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(data); n%8 != 0 {
		t.Errorf("header length %d is not padded to 8", n)
	}
	out, err := ParseSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Error(diff)
	}
}

func header(t *testing.T, h string, data []byte) []byte {
	t.Helper()
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

func TestSafetensorsHalfPrecision(t *testing.T) {
	f16 := binary.LittleEndian.AppendUint16(nil, FloatToHalf(1.5))
	f16 = binary.LittleEndian.AppendUint16(f16, FloatToHalf(-2))
	bf16 := binary.LittleEndian.AppendUint16(nil, uint16(math.Float32bits(3.25)>>16))
	data := header(t, `{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}`, append(f16, bf16...))
	out, err := ParseSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["a"].Data; got[0] != 1.5 || got[1] != -2 {
		t.Errorf("F16 read as %v", got)
	}
	if got := out["b"].Data[0]; got != 3.25 {
		t.Errorf("BF16 read as %v", got)
	}
}

func TestSafetensorsErrors(t *testing.T) {
	eight := make([]byte, 8)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2}, "too short"},
		{"header too long", binary.LittleEndian.AppendUint64(nil, 1<<40), "does not fit"},
		{"bad json", header(t, `{"a":`, nil), "header"},
		{"dtype", header(t, `{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, eight), `dtype "I64" not supported`},
		{"range outside", header(t, `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight), "outside"},
		{"shape mismatch", header(t, `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), "for shape [3]"},
		{"overlap", header(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "overlap"},
		{"negative dim", header(t, `{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight), "bad shape"},
		{"unknown field", header(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, eight), "unknown field"},
		{"empty", header(t, `{"__metadata__":{}}`, nil), "no tensors"},
	} {
		if _, err := ParseSafetensors(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseSafetensors(f *testing.F) {
	good, _ := EncodeSafetensors(map[string]Tensor{"w": {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}}, nil)
	f.Add(good)
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseSafetensors(data)
		if err != nil {
			return
		}
		for name, tensor := range out {
			n := 1
			for _, d := range tensor.Shape {
				n *= d
			}
			if n != len(tensor.Data) {
				t.Fatalf("tensor %q: %d values for shape %v", name, len(tensor.Data), tensor.Shape)
			}
		}
	})
}

func TestHalfConversions(t *testing.T) {
	for _, f := range []float32{0, 1, -1, 0.5, 65504, 1e-4, 6e-8, -3.140625} {
		if got := RoundHalf(f); math.Abs(float64(got-f)) > math.Abs(float64(f))*1e-3+6e-8 {
			t.Errorf("RoundHalf(%g) = %g", f, got)
		}
	}
	if h := FloatToHalf(1e6); h != 0x7c00 {
		t.Errorf("overflow gives %#x, want +Inf", h)
	}
	if !math.IsNaN(float64(HalfToFloat(FloatToHalf(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
	// Every half value survives a round trip through float32.
	for h := range uint32(1 << 16) {
		if (h>>10)&0x1f == 0x1f && h&0x3ff != 0 {
			continue // NaN payloads
		}
		if got := FloatToHalf(HalfToFloat(uint16(h))); got != uint16(h) {
			t.Fatalf("half %#x -> %g -> %#x", h, HalfToFloat(uint16(h)), got)
		}
	}
}

const goodConfig = `name: m
inputs: [{name: x, datatype: FP32, shape: [3]}]
outputs: [{name: y, datatype: FP32, shape: [2]}]
layers:
- {weights: w0, bias: b0, activation: relu}
- {weights: w1, bias: b1, activation: identity}
`

func TestParseConfigErrors(t *testing.T) {
	if _, err := ParseConfig([]byte(goodConfig)); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := `name: "bad name"
maxBatchSize: -1
maxQueueDelay: 5s
canary: {version: "x", percent: 200}
inputs: [{name: x, datatype: STRING, shape: [0]}]
outputs: []
layers: [{weights: w, bias: "", activation: gelu}]
`
	_, err := ParseConfig([]byte(bad))
	for _, want := range []string{"name:", "maxBatchSize", "maxQueueDelay", "canary.version", "canary.percent", `"STRING" not supported`, "inputs[0].shape", "outputs: an MLP has exactly one", "layers[0]: weights and bias", `unknown activation "gelu"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if _, err := ParseConfig([]byte(goodConfig + "extra: 1\n")); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown field: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("name: x\ncanary: {version: \"2\", percent: 5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if len(c.Inputs) != 1 || len(c.Outputs) != 1 || len(c.Layers) == 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// writeModel writes a 3 -> 4 -> 2 model version.
func writeModel(t *testing.T, dir, name, config string, versions ...string) {
	t.Helper()
	mdir := filepath.Join(dir, name)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	config = strings.Replace(config, "name: m\n", "name: "+name+"\n", 1)
	for _, v := range versions {
		if err := os.MkdirAll(filepath.Join(mdir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := EncodeSafetensors(map[string]Tensor{
			"w0": {Shape: []int{3, 4}, Data: make([]float32, 12)}, "b0": {Shape: []int{4}, Data: make([]float32, 4)},
			"w1": {Shape: []int{4, 2}, Data: make([]float32, 8)}, "b1": {Shape: []int{2}, Data: []float32{1, 2}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mdir, v, WeightsFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mdir, ConfigFile), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRepository(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "m", goodConfig+"canary: {version: \"10\", percent: 25}\n", "1", "2", "10")
	models, err := Load(dir, Defaults{MaxBatchSize: 16, MaxQueueDelay: 3 * time.Millisecond, Version: "2"})
	if err != nil {
		t.Fatal(err)
	}
	m := models["m"]
	var versions []string
	for _, v := range m.Versions {
		versions = append(versions, v.Version)
	}
	if diff := cmp.Diff([]string{"1", "2", "10"}, versions); diff != "" {
		t.Errorf("versions sorted numerically: %s", diff)
	}
	if m.Default.Version != "2" || m.CanaryVersion.Version != "10" {
		t.Errorf("default %s (want 2, from Defaults.Version), canary %v", m.Default.Version, m.CanaryVersion)
	}
	if m.MaxBatchSize != 16 || m.MaxQueueDelay.Duration != 3*time.Millisecond || m.MaxQueueSize != 16 {
		t.Errorf("defaults not applied: %+v", m.Config)
	}
	if m.Route(0.2).Version != "10" || m.Route(0.3).Version != "2" {
		t.Error("canary routing by share is wrong")
	}
	if v := m.Versions[0]; v.In != 3 || v.Out != 2 || len(v.Layers) != 2 {
		t.Errorf("version 1: %+v", v)
	}
}

func TestLoadRepositoryReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "wrong-width", strings.Replace(goodConfig, "shape: [3]", "shape: [5]", 1), "1")
	writeModel(t, dir, "no-versions", goodConfig)
	writeModel(t, dir, "misnamed", goodConfig, "1")
	if err := os.WriteFile(filepath.Join(dir, "misnamed", ConfigFile), []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	writeModel(t, dir, "bad-canary", goodConfig+"canary: {version: \"9\", percent: 5}\n", "1")
	_, err := Load(dir, Defaults{})
	for _, want := range []string{
		"wrong-width/1/model.safetensors: input \"x\" has 5 values but the first layer takes 3",
		"no-versions: no version directory",
		`name "m" differs from its directory "misnamed"`,
		`canary version "9" has no directory`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not mention %q", err, want)
		}
	}
	if _, err := Load(t.TempDir(), Defaults{}); err == nil || !strings.Contains(err.Error(), "holds no model") {
		t.Errorf("empty repository: %v", err)
	}
}

// The shipped reference model loads.
func TestShippedModelLoads(t *testing.T) {
	models, err := Load(filepath.Join("..", "..", "..", "models"), Defaults{MaxBatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	m := models["property-value"]
	if m == nil || m.Default.Version != "1" || m.CanaryVersion == nil || m.Default.In != 8 || m.Default.Out != 1 {
		t.Fatalf("property-value: %+v", m)
	}
}
