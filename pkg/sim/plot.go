package sim

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// PlotAllocation draws GPU allocation against arrived workload for each
// result into a PNG (or SVG/PDF, by the file's extension), with the ideal
// line (allocation = arrived) for reference.
func PlotAllocation(path, title string, results []*Result) error {
	p := plot.New()
	p.Title.Text = "GPU allocation vs arrived workload: " + title
	p.X.Label.Text = "arrived GPU request (% of cluster GPUs)"
	p.Y.Label.Text = "GPUs allocated (%)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, GridPoints-1, 0, 100
	p.Add(plotter.NewGrid())
	// The curves run from bottom left to top right: the top left is free.
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), vg.Points(-10)

	ideal := plotter.XYs{{X: 0, Y: 0}, {X: 100, Y: 100}, {X: GridPoints - 1, Y: 100}}
	line, err := plotter.NewLine(ideal)
	if err != nil {
		return err
	}
	line.Color = color.Gray{Y: 160}
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(line)
	p.Legend.Add("every arrived GPU allocated", line)

	for i, r := range results {
		pts := make(plotter.XYs, len(r.AllocPct))
		for x, v := range r.AllocPct {
			pts[x] = plotter.XY{X: float64(x), Y: v}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (seed %d): %.2f%% at 130%%", r.Policy, r.Seed, r.AllocPct[GridPoints-1]), l)
	}
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Legend.Padding = vg.Points(2)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	return nil
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
}
