package cost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
)

// Price is what one GPU costs per hour.
type Price struct {
	OnDemand float64 `json:"onDemand"`
	Spot     float64 `json:"spot"`
}

// For is the hourly price on spot or on-demand capacity.
func (p Price) For(spot bool) float64 {
	if spot {
		return p.Spot
	}
	return p.OnDemand
}

// Prices is a price table: per GPU model, what a GPU-hour costs.
type Prices struct {
	// Currency is the currency of the prices, e.g. USD.
	Currency string `json:"currency"`
	// Models are the prices by GPU model name (package gpumodel).
	Models map[string]Price `json:"models"`
	// Default prices models the table does not name; nil when absent.
	Default *Price `json:"default,omitempty"`
}

// DefaultCurrency is the currency of a price table that names none.
const DefaultCurrency = "USD"

// Lookup returns the hourly price of a GPU of model on spot or on-demand
// capacity; ok is false when the table has no price for it.
func (p *Prices) Lookup(model string, spot bool) (price float64, ok bool) {
	if p == nil {
		return 0, false
	}
	if m, found := p.Models[model]; found {
		return m.For(spot), true
	}
	if p.Default != nil {
		return p.Default.For(spot), true
	}
	return 0, false
}

// LoadPrices reads a price table from a file; errors name the file and line.
func LoadPrices(path string) (*Prices, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the price table: %w", err)
	}
	p, err := ParsePrices(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePrices parses a YAML price table:
//
//	currency: USD            # optional, default USD
//	models:                  # $/GPU-hour by GPU model (package gpumodel names)
//	  V100M16: {onDemand: 2.48, spot: 0.74}
//	  T4: {onDemand: 0.35, spot: 0.11}
//	default: {onDemand: 2.00, spot: 0.60}   # optional: any other model
//
// Decoding is strict: unknown fields, unknown models, duplicate keys,
// missing, negative or non-numeric prices are errors. Every problem is
// reported, each naming its line.
func ParsePrices(data []byte) (*Prices, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the price table is empty: it needs models or default prices")
		}
		return nil, fmt.Errorf("parsing the price table: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("parsing the price table: %w", err)
		}
		return nil, fmt.Errorf("line %d: a second YAML document: a price table is one document", extra.Line)
	}
	pp := &priceParser{}
	p := pp.table(&doc)
	if len(pp.errs) > 0 {
		return nil, fmt.Errorf("invalid price table:\n%w", errors.Join(pp.errs...))
	}
	return p, nil
}

type priceParser struct{ errs []error }

func (pp *priceParser) errorf(n *yaml.Node, format string, args ...any) {
	pp.errs = append(pp.errs, fmt.Errorf("line %d: "+format, append([]any{n.Line}, args...)...))
}

// mapping checks that n is a mapping with string keys out of fields and
// calls fn for each pair.
func (pp *priceParser) mapping(n *yaml.Node, what string, fields []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		pp.errorf(n, "%s: want a mapping, got %s", what, describe(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			pp.errorf(k, "%s: want a name as key, got %s", what, describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			pp.errorf(k, "%s: %q given twice (first on line %d)", what, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if fields != nil && !slices.Contains(fields, k.Value) {
			pp.errorf(k, "%s: unknown field %q (known fields: %s)", what, k.Value, strings.Join(fields, ", "))
			continue
		}
		fn(k.Value, k, v)
	}
	return true
}

func (pp *priceParser) table(doc *yaml.Node) *Prices {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		pp.errorf(doc, "want a price table")
		return nil
	}
	root := doc.Content[0]
	p := &Prices{Currency: DefaultCurrency, Models: map[string]Price{}}
	hasModels := false
	ok := pp.mapping(root, "price table", []string{"currency", "models", "default"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "currency":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || !validCurrency(v.Value) {
				pp.errorf(v, "currency: want a currency code such as USD or EUR, got %s", describe(v))
				return
			}
			p.Currency = v.Value
		case "models":
			hasModels = true
			pp.mapping(v, "models", nil, func(name string, k, pv *yaml.Node) {
				if _, err := gpumodel.Lookup(name); err != nil {
					pp.errorf(k, "%v (prices for other models go under default)", err)
					return
				}
				if price, ok := pp.price(pv, "model "+name); ok {
					p.Models[name] = price
				}
			})
		case "default":
			if price, ok := pp.price(v, "default"); ok {
				p.Default = &price
			}
		}
	})
	if ok && !hasModels && p.Default == nil && len(pp.errs) == 0 {
		pp.errorf(root, "no prices: give models, default or both")
	}
	return p
}

// price parses {onDemand: N, spot: N}.
func (pp *priceParser) price(n *yaml.Node, what string) (Price, bool) {
	var price Price
	present := map[string]bool{}
	before := len(pp.errs)
	if !pp.mapping(n, what, []string{"onDemand", "spot"}, func(key string, _, v *yaml.Node) {
		present[key] = true
		f, ok := pp.number(v, what+": "+key)
		if !ok {
			return
		}
		if key == "onDemand" {
			price.OnDemand = f
		} else {
			price.Spot = f
		}
	}) {
		return price, false
	}
	for _, key := range []string{"onDemand", "spot"} {
		if !present[key] {
			hint := ""
			if key == "spot" {
				hint = " (set it equal to onDemand where there is no spot market)"
			}
			pp.errorf(n, "%s: %s price missing%s", what, key, hint)
		}
	}
	return price, len(pp.errs) == before
}

// number parses a price: a finite number, 0 or more, per GPU-hour.
func (pp *priceParser) number(n *yaml.Node, what string) (float64, bool) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
		pp.errorf(n, "%s: want a price per GPU-hour (a number), got %s", what, describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		pp.errorf(n, "%s: %q is not a finite number", what, n.Value)
		return 0, false
	}
	if f < 0 {
		pp.errorf(n, "%s: price %v is negative", what, f)
		return 0, false
	}
	return f, true
}

func validCurrency(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}

// describe names a node's kind for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias (not supported)"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	default:
		return "something else"
	}
}
