package cost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePrices(t *testing.T) {
	p, err := ParsePrices([]byte(`# GPU prices
currency: EUR
models:
  V100M16: {onDemand: 2.48, spot: 0.74}
  T4:
    onDemand: 1
    spot: 0
default: {onDemand: 2.00, spot: 0.60}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Prices{
		Currency: "EUR",
		Models:   map[string]Price{"V100M16": {OnDemand: 2.48, Spot: 0.74}, "T4": {OnDemand: 1, Spot: 0}},
		Default:  &Price{OnDemand: 2, Spot: 0.6},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		model string
		spot  bool
		want  float64
	}{{"V100M16", false, 2.48}, {"V100M16", true, 0.74}, {"T4", true, 0}, {"A100", false, 2}, {"A100", true, 0.6}} {
		if got, ok := p.Lookup(tc.model, tc.spot); !ok || got != tc.want {
			t.Errorf("Lookup(%s, spot=%v) = %v, %v; want %v", tc.model, tc.spot, got, ok, tc.want)
		}
	}
	onlyModels, err := ParsePrices([]byte("models:\n  T4: {onDemand: 0.35, spot: 0.11}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if onlyModels.Currency != "USD" {
		t.Errorf("currency %q, want the default USD", onlyModels.Currency)
	}
	if _, ok := onlyModels.Lookup("A100", false); ok {
		t.Error("a model without a price and no default has a price")
	}
}

func TestParsePricesErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want are substrings of the error, each naming its line.
		want []string
	}{
		{"empty", "", []string{"the price table is empty"}},
		{"comment only", "# nothing\n", []string{"the price table is empty"}},
		{"syntax", "models:\n  T4: {onDemand: 1\n", []string{"line"}},
		{"not a mapping", "- 1\n- 2\n", []string{"line 1: price table: want a mapping, got a list"}},
		{"unknown top-level field", "currency: USD\nmodel:\n  T4: {onDemand: 1, spot: 1}\n",
			[]string{`line 2: price table: unknown field "model" (known fields: currency, models, default)`}},
		{"unknown price field", "models:\n  T4: {onDemand: 1, spot: 1, reserved: 0.5}\n",
			[]string{`line 2: model T4: unknown field "reserved" (known fields: onDemand, spot)`}},
		{"negative", "models:\n  T4: {onDemand: 1, spot: 0.1}\n  V100M16:\n    onDemand: -2.48\n    spot: 0.74\n",
			[]string{"line 4: model V100M16: onDemand: price -2.48 is negative"}},
		{"unknown model", "models:\n  T4: {onDemand: 1, spot: 1}\n  V100: {onDemand: 2, spot: 1}\n",
			[]string{`line 3: unknown GPU model "V100": known models are A10, A100, H100, P100, T4, V100M16, V100M32`}},
		{"missing spot", "models:\n  T4: {onDemand: 1}\n",
			[]string{"line 2: model T4: spot price missing (set it equal to onDemand where there is no spot market)"}},
		{"missing both", "default: {}\n", []string{"line 1: default: onDemand price missing", "line 1: default: spot price missing"}},
		{"null price", "models:\n  T4:\n", []string{"line 2: model T4: want a mapping, got nothing"}},
		{"string price", "models:\n  T4: {onDemand: cheap, spot: 1}\n", []string{`line 2: model T4: onDemand: want a price per GPU-hour (a number), got "cheap"`}},
		{"quoted number", "models:\n  T4: {onDemand: \"1\", spot: 1}\n", []string{`line 2: model T4: onDemand: want a price per GPU-hour (a number), got "1"`}},
		{"infinite", "models:\n  T4: {onDemand: .inf, spot: 1}\n", []string{`line 2: model T4: onDemand: ".inf" is not a finite number`}},
		{"nan", "default: {onDemand: .nan, spot: 1}\n", []string{`line 1: default: onDemand: ".nan" is not a finite number`}},
		{"duplicate model", "models:\n  T4: {onDemand: 1, spot: 1}\n  T4: {onDemand: 2, spot: 1}\n",
			[]string{`line 3: models: "T4" given twice (first on line 2)`}},
		{"duplicate field", "currency: USD\ncurrency: EUR\ndefault: {onDemand: 1, spot: 1}\n",
			[]string{`line 2: price table: "currency" given twice (first on line 1)`}},
		{"bad currency", "currency: 12\ndefault: {onDemand: 1, spot: 1}\n", []string{`line 1: currency: want a currency code such as USD or EUR, got "12"`}},
		{"no prices", "currency: USD\n", []string{"line 1: no prices: give models, default or both"}},
		{"models not a mapping", "models: [T4]\n", []string{"line 1: models: want a mapping, got a list"}},
		{"two documents", "default: {onDemand: 1, spot: 1}\n---\ndefault: {onDemand: 2, spot: 1}\n", []string{"line 2: a second YAML document"}},
		{"alias", "default: &p {onDemand: 1, spot: 1}\nmodels:\n  T4: *p\n", []string{"line 3: model T4: want a mapping, got an alias (not supported)"}},
		{"every error", "models:\n  T4: {onDemand: -1, spot: 1}\n  X1: {onDemand: 1, spot: 1}\nextra: 1\n",
			[]string{"line 2: model T4: onDemand: price -1 is negative", `line 3: unknown GPU model "X1"`, `line 4: price table: unknown field "extra"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePrices([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", p)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadPricesNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(path, []byte("models:\n  T4: {onDemand: -1, spot: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPrices(path)
	if err == nil || !strings.Contains(err.Error(), path+": invalid price table:\nline 2: model T4: onDemand: price -1 is negative") {
		t.Errorf("error %q: want it to name the file and line 2", err)
	}
	if _, err := LoadPrices(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "reading the price table") {
		t.Errorf("error %v for a missing file", err)
	}
}
