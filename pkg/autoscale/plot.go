package autoscale

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// PlotTimeline draws demand (in replicas) against ready and total replicas
// over time into a PNG (or SVG/PDF by the extension).
func PlotTimeline(path, title string, r *Result) error {
	if len(r.Timeline) == 0 {
		return fmt.Errorf("drawing %s: the replay recorded no timeline", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "trace time (hours)"
	p.Y.Label.Text = "replicas"
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	series := []struct {
		name string
		y    func(Point) float64
	}{
		{"demand / replica capacity", func(pt Point) float64 { return pt.Needed }},
		{"ready replicas", func(pt Point) float64 { return float64(pt.Ready) }},
		{"replicas (with starting)", func(pt Point) float64 { return float64(pt.Replicas) }},
	}
	for i, s := range series {
		pts := make(plotter.XYs, len(r.Timeline))
		for j, pt := range r.Timeline {
			pts[j] = plotter.XY{X: float64(pt.Second) / 3600, Y: s.y(pt)}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(0.8)
		if i == 2 {
			l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	if err := p.Save(11*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	return nil
}

// PlotFrontiers draws each family's evaluation frontier (under-provisioned
// replica-seconds against GPU-hours, log scale) with the comparison point H.
func PlotFrontiers(path string, s *StudyResult) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: under-provisioning vs cost on the evaluation part", s.Trace)
	p.X.Label.Text = "GPU-hours"
	p.Y.Label.Text = "under-provisioned replica-seconds"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, f := range s.Families {
		var pts plotter.XYs
		for _, pt := range Pareto(f.Eval) {
			pts = append(pts, plotter.XY{X: pt.GPUHours, Y: math.Max(pt.Underprov, 1)})
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, sc.Color = palette[i%len(palette)], palette[i%len(palette)]
		p.Add(l, sc)
		p.Legend.Add(fmt.Sprintf("%s: %.0f at H", f.Name, f.AtH), l, sc)
	}
	h, err := plotter.NewLine(plotter.XYs{{X: s.H, Y: 1}, {X: s.H, Y: 1e9}})
	if err != nil {
		return err
	}
	h.Color = color.Gray{Y: 120}
	h.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(h)
	p.Legend.Add(fmt.Sprintf("H = %.0f GPU-hours", s.H), h)
	ymin, ymax := math.Inf(1), 0.0
	for _, f := range s.Families {
		for _, pt := range f.Eval {
			ymin, ymax = math.Min(ymin, math.Max(pt.Underprov, 1)), math.Max(ymax, pt.Underprov)
		}
	}
	p.Y.Min, p.Y.Max = ymin/2, ymax*2
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	return nil
}
