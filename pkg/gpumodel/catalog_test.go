package gpumodel

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	m, err := Lookup("V100M16")
	if err != nil {
		t.Fatal(err)
	}
	if m.LabelProduct() != "Tesla-V100-SXM2-16GB" || m.MemoryMiB != 16384 || m.Arch != "volta" {
		t.Errorf("V100M16 = %+v", m)
	}
	if _, err := Lookup("v100m16"); err == nil || !strings.Contains(err.Error(), "V100M16") {
		t.Errorf("lookup is case-sensitive and names the known models; got %v", err)
	}
}

// Every model of the Alibaba openb trace is known.
func TestTraceModelsKnown(t *testing.T) {
	for _, name := range []string{"V100M16", "V100M32", "P100", "T4", "A10"} {
		if _, err := Lookup(name); err != nil {
			t.Error(err)
		}
	}
}

func TestCatalogConsistent(t *testing.T) {
	for _, name := range Names() {
		m, _ := Lookup(name)
		if m.Name != name || m.Product == "" || m.MemoryMiB <= 0 || m.Arch == "" || m.Accelerator == "" {
			t.Errorf("incomplete catalog entry %q: %+v", name, m)
		}
		if strings.Contains(m.LabelProduct(), " ") {
			t.Errorf("%s: label value %q has spaces", name, m.LabelProduct())
		}
	}
}
