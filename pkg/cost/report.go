package cost

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// GroupBy says how a Report groups its rows.
type GroupBy string

// Groupings.
const (
	ByNamespace GroupBy = "namespace"
	ByWorkload  GroupBy = "workload"
	ByNode      GroupBy = "node"
	ByModel     GroupBy = "model"
)

// Groupings lists the valid GroupBy values.
var Groupings = []GroupBy{ByNamespace, ByWorkload, ByNode, ByModel}

// ParseGroupBy checks a grouping's name.
func ParseGroupBy(s string) (GroupBy, error) {
	for _, g := range Groupings {
		if string(g) == s {
			return g, nil
		}
	}
	names := make([]string, len(Groupings))
	for i, g := range Groupings {
		names[i] = string(g)
	}
	return "", fmt.Errorf("unknown grouping %q: want one of %s", s, strings.Join(names, ", "))
}

// ReportOptions say how to build a Report.
type ReportOptions struct {
	By GroupBy
	// Prices prices the report; nil leaves costs out.
	Prices *Prices
	// Recommend sets the recommendations' thresholds; zero fields take
	// their defaults.
	Recommend RecommendOptions
}

// Report is GPU time and cost grouped by namespace, workload, node or GPU
// model, with recommendations.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	By   GroupBy   `json:"by"`
	// Priced says costs are computed (a price table was given).
	Priced   bool   `json:"priced"`
	Currency string `json:"currency,omitempty"`
	// WindowSeconds is To - From; ObservedSeconds the part of it over
	// which use and idle capacity are known, UnobservedSeconds the rest.
	WindowSeconds     float64 `json:"windowSeconds"`
	ObservedSeconds   float64 `json:"observedSeconds"`
	UnobservedSeconds float64 `json:"unobservedSeconds"`
	// Rows are the groups, most expensive (or most GPU time) first.
	Rows []Row `json:"rows"`
	// Idle is the unallocated GPU time of all nodes, when grouped by
	// namespace or workload (by node or model, the rows carry it).
	Idle *Row `json:"idle,omitempty"`
	// Total sums the rows and idle time.
	Total Row `json:"total"`
	// TotalCost is the allocated cost plus the idle cost.
	TotalCost       float64          `json:"totalCost"`
	Recommendations []Recommendation `json:"recommendations"`
	Warnings        []string         `json:"warnings,omitempty"`
	// Usage is what the report was built from: a client can regroup and
	// reprice it.
	Usage Usage `json:"usage"`
}

// Row is one group of a Report. Hours are GPU-hours: a 300-milli share for
// an hour is 0.3.
type Row struct {
	Group             string  `json:"group"`
	GPUHoursAllocated float64 `json:"gpuHoursAllocated"`
	GPUHoursUsed      float64 `json:"gpuHoursUsed"`
	// Efficiency is used over allocated GPU time, both over the intervals
	// where use was observed; nil when use was never observed. It can pass
	// 1 where a share uses more than its size of an otherwise idle GPU.
	Efficiency *float64 `json:"efficiency"`
	// Cost is the allocated GPU-hours priced by model and capacity type.
	Cost float64 `json:"cost"`
	// IdleGPUHours and IdleCost are unallocated GPU time and its cost.
	IdleGPUHours float64 `json:"idleGPUHours"`
	IdleCost     float64 `json:"idleCost"`

	allocObservedHours float64
}

const secondsPerHour = 3600

// pricer prices GPU-seconds and remembers what it could not price.
type pricer struct {
	prices  *Prices
	missing map[string]bool
}

func (p *pricer) cost(model string, spot bool, gpuSeconds float64) float64 {
	if p.prices == nil || gpuSeconds == 0 {
		return 0
	}
	price, ok := p.prices.Lookup(model, spot)
	if !ok {
		p.missing[fmt.Sprintf("%q (%s)", model, CapacityType(spot))] = true
		return 0
	}
	return price * gpuSeconds / secondsPerHour
}

// BuildReport groups and prices u and adds recommendations.
func BuildReport(u Usage, o ReportOptions) (Report, error) {
	if _, err := ParseGroupBy(string(o.By)); err != nil {
		return Report{}, err
	}
	ro := o.Recommend.withDefaults()
	if err := ro.validate(); err != nil {
		return Report{}, err
	}
	pr := &pricer{prices: o.Prices, missing: map[string]bool{}}
	r := Report{
		From: u.From, To: u.To, By: o.By,
		Priced:          o.Prices != nil,
		WindowSeconds:   u.WindowSeconds(),
		ObservedSeconds: u.ObservedSeconds,
		Rows:            []Row{},
		Warnings:        slices.Clone(u.Notes),
		Usage:           u,
	}
	if o.Prices != nil {
		r.Currency = o.Prices.Currency
	}
	r.UnobservedSeconds = max(0, r.WindowSeconds-r.ObservedSeconds)

	rows := map[string]*Row{}
	row := func(name string) *Row {
		if rows[name] == nil {
			rows[name] = &Row{Group: name}
		}
		return rows[name]
	}
	for _, e := range u.Entries {
		g := row(groupOf(e.Key, o.By))
		g.GPUHoursAllocated += e.AllocatedGPUSeconds / secondsPerHour
		g.GPUHoursUsed += e.UsedGPUSeconds / secondsPerHour
		g.allocObservedHours += e.AllocatedObservedGPUSeconds / secondsPerHour
		g.Cost += pr.cost(e.Model, e.Spot, e.AllocatedGPUSeconds)
	}
	idle := &Row{Group: "(idle)"}
	for _, n := range u.Nodes {
		h := n.UnallocatedGPUSeconds / secondsPerHour
		c := pr.cost(n.Model, n.Spot, n.UnallocatedGPUSeconds)
		idle.IdleGPUHours += h
		idle.IdleCost += c
		switch o.By {
		case ByNode:
			g := row(orUnknown(n.Node))
			g.IdleGPUHours += h
			g.IdleCost += c
		case ByModel:
			g := row(orUnknown(n.Model))
			g.IdleGPUHours += h
			g.IdleCost += c
		}
	}
	r.Total.Group = "(total)"
	for _, g := range rows {
		g.Efficiency = efficiency(g.GPUHoursUsed, g.allocObservedHours)
		r.Rows = append(r.Rows, *g)
		r.Total.GPUHoursAllocated += g.GPUHoursAllocated
		r.Total.GPUHoursUsed += g.GPUHoursUsed
		r.Total.allocObservedHours += g.allocObservedHours
		r.Total.Cost += g.Cost
	}
	r.Total.Efficiency = efficiency(r.Total.GPUHoursUsed, r.Total.allocObservedHours)
	r.Total.IdleGPUHours, r.Total.IdleCost = idle.IdleGPUHours, idle.IdleCost
	if o.By == ByNamespace || o.By == ByWorkload {
		r.Idle = idle
	}
	r.TotalCost = r.Total.Cost + r.Total.IdleCost
	slices.SortFunc(r.Rows, func(a, b Row) int {
		return cmp.Or(
			-cmp.Compare(roundTo(a.Cost+a.IdleCost, 1e-6), roundTo(b.Cost+b.IdleCost, 1e-6)),
			-cmp.Compare(roundTo(a.GPUHoursAllocated+a.IdleGPUHours, 1e-6), roundTo(b.GPUHoursAllocated+b.IdleGPUHours, 1e-6)),
			cmp.Compare(a.Group, b.Group))
	})
	r.Recommendations = recommend(u, pr, ro)
	for _, m := range slices.Sorted(maps.Keys(pr.missing)) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("no price for GPU model %s: its cost is left out; add the model (or default) to the price table", m))
	}
	return r, nil
}

// roundTo rounds v to a multiple of unit, so that sums that differ only by
// float rounding sort as equal.
func roundTo(v, unit float64) float64 { return math.Round(v/unit) * unit }

func groupOf(k Key, by GroupBy) string {
	switch by {
	case ByWorkload:
		return k.WorkloadRef().String()
	case ByNode:
		return orUnknown(k.Node)
	case ByModel:
		return orUnknown(k.Model)
	default:
		return k.Namespace
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func efficiency(used, allocObserved float64) *float64 {
	if allocObserved <= 0 {
		return nil
	}
	e := used / allocObserved
	return &e
}
