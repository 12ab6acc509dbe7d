package demo

import (
	"github.com/gpufleet/gpufleet/pkg/cost"
)

// Prices is the demo's price table, written to prices.yaml beside its
// report. The figures are illustrative: of the order of public cloud list
// prices for these GPUs in dollars per GPU-hour, on-demand and spot, not
// anyone's quote.
const Prices = `# Illustrative GPU prices for gpufleet demo, USD per GPU-hour: of the order
# of public cloud list prices for these GPUs, not anyone's quote. Use your own
# table with: gpufleet cost --prices FILE (format: docs/cost.md).
currency: USD
models:
  V100M16: {onDemand: 2.48, spot: 0.74}
  V100M32: {onDemand: 3.90, spot: 1.17}
  T4: {onDemand: 0.35, spot: 0.11}
`

// prices parses Prices.
func prices() (*cost.Prices, error) { return cost.ParsePrices([]byte(Prices)) }
