package cost

import (
	"math"
	"strings"
	"testing"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
)

// FuzzParsePrices parses arbitrary text: it never panics, and a table it
// accepts has a currency and only finite, non-negative prices of known
// models. Every error it returns for YAML that parses names a line.
func FuzzParsePrices(f *testing.F) {
	f.Add("currency: USD\nmodels:\n  V100M16: {onDemand: 2.48, spot: 0.74}\ndefault: {onDemand: 2, spot: 0.6}\n")
	f.Add("models:\n  T4: {onDemand: -1, spot: 1}\n")
	f.Add("default: &p {onDemand: 1, spot: 1}\nmodels:\n  T4: *p\n")
	f.Add("models: {T4: {onDemand: 1e309, spot: 0x10}}\n")
	f.Add("? [a]\n: b\n")
	f.Add("---\n...\n---\n")
	f.Add("models:\n  T4: {onDemand: 1, spot: 1, spot: 2}\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePrices([]byte(text))
		if err != nil {
			if strings.HasPrefix(err.Error(), "invalid price table:") && !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		if p.Currency == "" {
			t.Fatal("no currency")
		}
		if len(p.Models) == 0 && p.Default == nil {
			t.Fatal("accepted a table without prices")
		}
		check := func(what string, pr Price) {
			for _, v := range []float64{pr.OnDemand, pr.Spot} {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s: price %v accepted", what, v)
				}
			}
		}
		for m, pr := range p.Models {
			if _, err := gpumodel.Lookup(m); err != nil {
				t.Fatalf("unknown model %q accepted", m)
			}
			check(m, pr)
		}
		if p.Default != nil {
			check("default", *p.Default)
		}
	})
}
