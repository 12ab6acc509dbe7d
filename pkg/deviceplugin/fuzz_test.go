package deviceplugin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseMilliID(f *testing.F) {
	for _, id := range []string{
		testUUID(0) + "-m000", testUUID(7) + "-m999", "MIG-4f1c2d3e-m042",
		"", "-m000", "GPU-a-m", "GPU-a-m1000", "GPU-a-m-01", "GPU-a-m 12", "GPU-a-m0a1",
		"GPU-m-m001-m002", "GPU-ü-m001", "-m-m001", "GPU-a-m１２３",
	} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		uuid, k, err := parseMilliID(id)
		if err != nil {
			if uuid != "" || k != 0 {
				t.Errorf("parseMilliID(%q) = %q, %d with error %v", id, uuid, k, err)
			}
			return
		}
		if uuid == "" || k < 0 || k >= MilliPerGPU {
			t.Errorf("parseMilliID(%q) = %q, %d", id, uuid, k)
		}
		// The UUID is all but the separator and three characters.
		if !strings.HasPrefix(id, uuid+"-m") || len(id) != len(uuid)+5 {
			t.Errorf("parseMilliID(%q) = UUID %q", id, uuid)
		}
		if u, n, err := parseMilliID(milliID(uuid, k)); err != nil || u != uuid || n != k {
			t.Errorf("parseMilliID(milliID(%q, %d)) = %q, %d, %v", uuid, k, u, n, err)
		}
	})
}

func FuzzMilliIDRoundTrip(f *testing.F) {
	f.Add(testUUID(3), uint16(0))
	f.Add(testUUID(3), uint16(999))
	f.Add("GPU-m-m", uint16(5))
	f.Add("MIG-5a1c9e3f-7b2d-4e6a-8c0f-000000003d10", uint16(1000))
	f.Add(uuidOfLen(58), uint16(42))
	f.Fuzz(func(t *testing.T, uuid string, n uint16) {
		if checkUUID(uuid) != nil {
			t.Skip("not a UUID the plugin accepts")
		}
		k := int(n) % MilliPerGPU
		id := milliID(uuid, k)
		if len(id) > 63 {
			t.Errorf("milliID(%q, %d) = %q has %d characters, more than 63", uuid, k, id, len(id))
		}
		if u, got, err := parseMilliID(id); err != nil || u != uuid || got != k {
			t.Errorf("parseMilliID(%q) = %q, %d, %v, want %q, %d", id, u, got, err, uuid, k)
		}
	})
}

func TestParseMilliIDRejectsNonCanonicalNumbers(t *testing.T) {
	for _, id := range []string{testUUID(0) + "-m+12", testUUID(0) + "-m+99"} {
		if u, k, err := parseMilliID(id); err == nil {
			t.Errorf("parseMilliID(%q) = %q, %d, want an error", id, u, k)
		}
	}
}

// cdiSpec is the part of a CDI spec the runtime reads, as written.
type cdiSpec struct {
	Version string `json:"cdiVersion"`
	Kind    string `json:"kind"`
	Devices []struct {
		Name           string `json:"name"`
		ContainerEdits struct {
			Env []string `json:"env"`
		} `json:"containerEdits"`
	} `json:"devices"`
}

var semver = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

func FuzzWriteSimCDISpec(f *testing.F) {
	f.Add(uint8(8), "GPU-5a1c9e3f-7b2d-4e6a-8c0f")
	f.Add(uint8(1), "GPU-1")
	f.Add(uint8(15), "GPU-\"quoted\"-ü")
	f.Fuzz(func(t *testing.T, n uint8, base string) {
		gpus := make([]GPU, int(n%16)+1)
		for i := range gpus {
			gpus[i] = GPU{Index: i, UUID: fmt.Sprintf("%s-%02d", base, i)}
			if checkUUID(gpus[i].UUID) != nil || !utf8.ValidString(gpus[i].UUID) {
				t.Skip("not a UUID NVML reports")
			}
		}
		dir := filepath.Join(t.TempDir(), "cdi")
		path, err := WriteSimCDISpec(dir, gpus)
		if err != nil {
			t.Fatalf("WriteSimCDISpec: %v", err)
		}
		checkSimCDISpec(t, dir, path, gpus)
	})
}

// checkSimCDISpec checks that path, the one file in dir, is a CDI spec of
// kind sim.gpufleet.io/gpu with one device per GPU, named by its UUID,
// setting GPUFLEET_SIM_CDI_GPU<index>=<UUID>.
func checkSimCDISpec(t *testing.T, dir, path string, gpus []GPU) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("spec is not JSON:\n%s", data)
	}
	var spec cdiSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if !semver.MatchString(spec.Version) {
		t.Errorf("cdiVersion %q, want a version such as 0.5.0", spec.Version)
	}
	if spec.Kind != "sim.gpufleet.io/gpu" {
		t.Errorf("kind %q, want sim.gpufleet.io/gpu", spec.Kind)
	}
	if len(spec.Devices) != len(gpus) {
		t.Fatalf("%d devices for %d GPUs", len(spec.Devices), len(gpus))
	}
	for i, g := range gpus {
		d := spec.Devices[i]
		want := fmt.Sprintf("GPUFLEET_SIM_CDI_GPU%d=%s", g.Index, g.UUID)
		if d.Name != g.UUID || len(d.ContainerEdits.Env) != 1 || d.ContainerEdits.Env[0] != want {
			t.Errorf("device %d: name %q env %q, want name %q env [%q]", i, d.Name, d.ContainerEdits.Env, g.UUID, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || filepath.Join(dir, entries[0].Name()) != path || filepath.Ext(path) != ".json" {
		t.Errorf("CDI directory holds %v, want only the spec %s (.json)", entries, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("spec mode %v, want 0644 so the runtime can read it", fi.Mode().Perm())
	}
}

func TestWriteSimCDISpecReplacesTheSpec(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "cdi")
	first, err := WriteSimCDISpec(dir, dgx1())
	if err != nil {
		t.Fatalf("WriteSimCDISpec: %v", err)
	}
	gpus := dgx1()[2:4]
	second, err := WriteSimCDISpec(dir, gpus)
	if err != nil {
		t.Fatalf("WriteSimCDISpec: %v", err)
	}
	if first != second {
		t.Errorf("second spec at %s, first at %s: want one file replaced", second, first)
	}
	checkSimCDISpec(t, dir, second, gpus)
}
