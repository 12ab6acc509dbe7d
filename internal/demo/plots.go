package demo

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gpufleet/gpufleet/internal/stack"
)

// Plot size and resolution.
const (
	plotWidth  = 9 * vg.Inch
	plotHeight = 5.5 * vg.Inch
	plotDPI    = 110
)

var (
	colorTarget = color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}
	colorServed = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorWant   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorReady  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	palette     = []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
)

// series is one line of a plot: a value per sample, NaN for none.
type series struct {
	label string
	color color.Color
	step  bool
	dash  bool
	value func(stack.Sample) float64
}

// newPlot draws the series over replay time.
func newPlot(title, yLabel string, samples []stack.Sample, ss ...series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	p.X.Tick.Marker = integerTicks{}
	p.X.Label.Text = "replay time (s)"
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(-8), vg.Points(-6)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.ThumbnailWidth = vg.Points(20)
	for _, s := range ss {
		var pts plotter.XYs
		for _, smp := range samples {
			if v := s.value(smp); !math.IsNaN(v) && !math.IsInf(v, 0) {
				pts = append(pts, plotter.XY{X: smp.At.Seconds(), Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plotting %s: %w", s.label, err)
		}
		l.Color, l.Width = s.color, vg.Points(1.5)
		if s.step {
			l.StepStyle = plotter.PostStep
		}
		if s.dash {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(s.label, l)
	}
	return p, nil
}

// plotRequestsReplicas draws two aligned panels: the target and served
// request rates, and the replicas the HPA wanted and the ready ones.
func plotRequestsReplicas(title string, samples []stack.Sample) ([]byte, error) {
	rates, err := newPlot(title, "requests/s", samples,
		series{label: "target (trace, scaled)", color: colorTarget, step: true, value: func(s stack.Sample) float64 { return s.TargetRPS }},
		series{label: "served (adapter requests_per_second)", color: colorServed, value: func(s stack.Sample) float64 { return s.ServedRPS }})
	if err != nil {
		return nil, err
	}
	replicas, err := newPlot("", "replicas", samples,
		series{label: "wanted (HPA)", color: colorWant, step: true, dash: true, value: func(s stack.Sample) float64 { return float64(s.Replicas) }},
		series{label: "ready", color: colorReady, step: true, value: func(s stack.Sample) float64 { return float64(s.Ready) }})
	if err != nil {
		return nil, err
	}
	rates.X.Label.Text = ""
	replicas.Y.Tick.Marker = integerTicks{}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight*1.3), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{rates}, {replicas}}, tiles, dc)
	rates.Draw(canvases[0][0])
	replicas.Draw(canvases[1][0])
	return pngBytes(img)
}

// plotUtilization draws each node's gpu_utilization, in percent.
func plotUtilization(title string, nodes []string, samples []stack.Sample) ([]byte, error) {
	var ss []series
	for i, n := range nodes {
		ss = append(ss, series{label: n, color: palette[i%len(palette)], value: func(s stack.Sample) float64 {
			if i >= len(s.Utilization) {
				return math.NaN()
			}
			return s.Utilization[i] * 100
		}})
	}
	p, err := newPlot(title, "GPU utilization (% of the node's GPUs)", samples, ss...)
	if err != nil {
		return nil, err
	}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(img))
	return pngBytes(img)
}

// integerTicks labels whole numbers at a round step (1, 2, 5, 10, 15, 30,
// 60, ... : seconds and replicas), at most about ten of them.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600} {
		step = s
		if (hi-lo)/s <= 10 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return ticks
}

func pngBytes(img *vgimg.Canvas) ([]byte, error) {
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("encoding a PNG: %w", err)
	}
	return b.Bytes(), nil
}
