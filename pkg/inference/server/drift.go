package server

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// Drift: each version with reference statistics (model.Reference) counts,
// over its last WindowRows rows, how many of each tracked input feature
// and output fall in each reference bin, and exports the population
// stability index (PSI) of that window against the training shares:
// PSI = sum over bins of (live - expected) x ln(live / expected). Below 0.1
// the traffic looks like the training data; above 0.25 it has shifted.
//
// The window is a ring of driftChunks chunks of WindowRows/driftChunks rows:
// memory is bins x chunks counters per column, whatever the traffic, and a
// shift shows in the PSI after about WindowRows/2 shifted rows.

// DriftConfig configures the drift statistics.
type DriftConfig struct {
	// WindowRows is how many recent rows the PSI covers; 0 disables drift
	// statistics.
	WindowRows int
}

const (
	driftChunks = 20
	// driftMinShare: a share of 0 (an empty bin) counts as this much, so
	// the PSI stays finite.
	driftMinShare = 1e-4
)

// driftStats are one version's live counts. Observe is called once per
// batch; the collector reads them on scrape.
type driftStats struct {
	model, version string
	ref            *model.Reference
	columns        []*model.ColumnReference // inputs, then outputs
	offsets        []int                    // first counter of each column
	chunkRows      int

	mu      sync.Mutex
	chunks  [][]uint32 // ring of per-bin counts
	cur     int
	curRows int
	filled  int      // chunks before cur that hold a full chunk
	total   []uint64 // every output row since start, per output bin (the prediction histogram)
	sum     []float64
	count   uint64
}

func newDriftStats(modelName, version string, ref *model.Reference, cfg DriftConfig) *driftStats {
	if ref == nil || cfg.WindowRows <= 0 {
		return nil
	}
	d := &driftStats{model: modelName, version: version, ref: ref, chunkRows: max(1, cfg.WindowRows/driftChunks)}
	n := 0
	for _, cols := range [][]model.ColumnReference{ref.Inputs, ref.Outputs} {
		for i := range cols {
			d.columns = append(d.columns, &cols[i])
			d.offsets = append(d.offsets, n)
			n += len(cols[i].Edges) + 1
		}
	}
	d.chunks = make([][]uint32, driftChunks)
	for i := range d.chunks {
		d.chunks[i] = make([]uint32, n)
	}
	outStart := n
	if len(ref.Outputs) > 0 {
		outStart = d.offsets[len(ref.Inputs)]
	}
	d.total = make([]uint64, n-outStart)
	d.sum = make([]float64, len(ref.Outputs))
	return d
}

// observe counts a batch: rows of in input values and out output values.
func (d *driftStats) observe(input []float32, in int, output []float32, out int, rows int) {
	nIn := len(d.ref.Inputs)
	d.mu.Lock()
	defer d.mu.Unlock()
	for r := range rows {
		counts := d.chunks[d.cur]
		for c := range nIn {
			col := d.columns[c]
			counts[d.offsets[c]+col.Bin(float64(input[r*in+c]))]++
		}
		for o := range d.ref.Outputs {
			col := d.columns[nIn+o]
			v := float64(output[r*out+o])
			b := col.Bin(v)
			counts[d.offsets[nIn+o]+b]++
			d.total[d.offsets[nIn+o]-d.offsets[nIn]+b]++
			d.sum[o] += v
		}
		d.count++
		if d.curRows++; d.curRows == d.chunkRows {
			d.cur = (d.cur + 1) % len(d.chunks)
			clear(d.chunks[d.cur])
			d.curRows = 0
			d.filled = min(d.filled+1, len(d.chunks)-1)
		}
	}
}

// psi returns each column's PSI over the window, and the window's rows.
func (d *driftStats) psi() ([]float64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rows := d.filled*d.chunkRows + d.curRows
	out := make([]float64, len(d.columns))
	if rows == 0 {
		return out, 0
	}
	for c, col := range d.columns {
		var p float64
		for b, expected := range col.Expected {
			var n uint64
			for _, chunk := range d.chunks {
				n += uint64(chunk[d.offsets[c]+b])
			}
			live := max(float64(n)/float64(rows), driftMinShare)
			e := max(expected, driftMinShare)
			p += (live - e) * math.Log(live/e)
		}
		out[c] = p
	}
	return out, rows
}

// driftCollector exports every version's drift at scrape time.
type driftCollector struct {
	stats    []*driftStats
	input    *prometheus.Desc
	output   *prometheus.Desc
	rows     *prometheus.Desc
	predDesc *prometheus.Desc
}

func newDriftCollector(stats []*driftStats) *driftCollector {
	return &driftCollector{
		stats: stats,
		input: prometheus.NewDesc("inference_input_drift",
			"Population stability index of an input feature over the drift window against the version's training data (reference.json): < 0.1 alike, > 0.25 shifted.",
			[]string{"model", "version", "feature"}, nil),
		output: prometheus.NewDesc("inference_output_drift",
			"Population stability index of an output over the drift window against the version's predictions on its training data.",
			[]string{"model", "version", "output"}, nil),
		rows: prometheus.NewDesc("inference_drift_window_rows",
			"Rows the drift window holds (the PSI is noisy below a few hundred).",
			[]string{"model", "version"}, nil),
		predDesc: prometheus.NewDesc("inference_prediction",
			"Every prediction since start, in the bins of the version's reference statistics.",
			[]string{"model", "version", "output"}, nil),
	}
}

func (c *driftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.input
	ch <- c.output
	ch <- c.rows
	ch <- c.predDesc
}

// minDriftRows: below this the window says nothing reliable, and no PSI is
// exported (the rows gauge still is).
const minDriftRows = 100

func (c *driftCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.stats {
		psi, rows := d.psi()
		ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(rows), d.model, d.version)
		nIn := len(d.ref.Inputs)
		if rows >= minDriftRows {
			for i, col := range d.columns {
				if i < nIn {
					ch <- prometheus.MustNewConstMetric(c.input, prometheus.GaugeValue, psi[i], d.model, d.version, col.Name)
				} else {
					ch <- prometheus.MustNewConstMetric(c.output, prometheus.GaugeValue, psi[i], d.model, d.version, col.Name)
				}
			}
		}
		d.mu.Lock()
		for o := range d.ref.Outputs {
			col := d.columns[nIn+o]
			off := d.offsets[nIn+o] - d.offsets[nIn]
			buckets := make(map[float64]uint64, len(col.Edges))
			var cum uint64
			for b, e := range col.Edges {
				cum += d.total[off+b]
				buckets[e] = cum
			}
			ch <- prometheus.MustNewConstHistogram(c.predDesc, d.count, d.sum[o], buckets, d.model, d.version, col.Name)
		}
		d.mu.Unlock()
	}
}
