package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium (Debian's chromium package; make deps installs
// it) or Chrome binary.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// pageLayout is what the page shows, measured by the browser after layout.
type pageLayout struct {
	Images []struct {
		Alt                   string
		Complete              bool
		NaturalWidth, Width   float64
		NaturalHeight, Height float64
	}
	Tables []struct {
		Rows          int
		Width, Height float64
	}
	Charts  []struct{ Width, Height float64 } // inline SVG charts
	Frames  []struct{ Width, Height float64 }
	Overlap int // elements wider than the viewport (a page that spills sideways)
}

const measure = `(() => {
  const box = e => { const r = e.getBoundingClientRect(); return {Width: r.width, Height: r.height}; };
  return {
    Images: [...document.images].map(i => ({Alt: i.alt, Complete: i.complete, NaturalWidth: i.naturalWidth, Width: i.getBoundingClientRect().width, NaturalHeight: i.naturalHeight, Height: i.getBoundingClientRect().height})),
    Tables: [...document.querySelectorAll('table')].map(t => Object.assign({Rows: t.rows.length}, box(t))),
    Charts: [...document.querySelectorAll('svg[role=img]')].map(box),
    Frames: [...document.querySelectorAll('iframe')].map(box),
    Overlap: [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length,
  };
})()`

// The demo's report.html and the cost report open in a real headless
// Chromium: every plot and table is laid out with a size, nothing is
// fetched from outside the file, and the console stays free of errors. The
// screenshots go to $GPUFLEET_PAGES_DIR (make check-pages: _output/pages).
func TestPagesInBrowser(t *testing.T) {
	chrome := chromium()
	if chrome == "" {
		if os.Getenv("GPUFLEET_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found (chromium, chromium-browser, google-chrome): make deps installs Debian's chromium")
		}
		t.Skip("no Chromium found (make deps installs Debian's chromium): the pages were not opened in a browser")
	}
	out := os.Getenv("GPUFLEET_PAGES_DIR")
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := WriteOutputs(dir, testResult(t)); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // root in CI; the pages are our own files
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), // FullScreenshot captures the whole page
		// Nothing may leave this machine: any name resolves to nothing and
		// any connection goes to a closed local port.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()

	// The checks catch what they look for: a page with an outside image and
	// a console error is reported.
	t.Run("a broken page is caught", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.html")
		page := `<!DOCTYPE html><title>bad</title><img alt="outside" src="http://example.invalid/x.png"><script>console.error("broken")</script>`
		if err := os.WriteFile(bad, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		layout, problems, _ := openPage(t, alloc, bad)
		joined := strings.Join(problems, "; ")
		if !strings.Contains(joined, "external request: http://example.invalid/x.png") || !strings.Contains(joined, "console error") {
			t.Errorf("problems %q lack the outside request or the console error", problems)
		}
		if len(layout.Images) != 1 || layout.Images[0].NaturalWidth != 0 {
			t.Errorf("the outside image loaded: %+v", layout.Images)
		}
	})

	for _, page := range []struct {
		file, shot           string
		images, charts, frms int
	}{
		{FileReport, "report.png", 2, 0, 1},
		{FileCostHTML, "cost.png", 0, 1, 0},
	} {
		t.Run(page.file, func(t *testing.T) {
			layout, problems, shot := openPage(t, alloc, filepath.Join(dir, page.file))
			if err := os.WriteFile(filepath.Join(out, page.shot), shot, 0o644); err != nil {
				t.Fatal(err)
			}
			if len(layout.Images) != page.images {
				t.Errorf("%d images, want %d", len(layout.Images), page.images)
			}
			for _, img := range layout.Images {
				if !img.Complete || img.NaturalWidth < 200 || img.Width < 200 || img.Height < 100 {
					t.Errorf("image %q not shown at size: %+v", img.Alt, img)
				}
			}
			if len(layout.Tables) == 0 {
				t.Error("no table")
			}
			for i, tb := range layout.Tables {
				if tb.Rows < 2 || tb.Width < 200 || tb.Height < 20 {
					t.Errorf("table %d not laid out: %+v", i, tb)
				}
			}
			if len(layout.Charts) < page.charts {
				t.Errorf("%d charts, want at least %d", len(layout.Charts), page.charts)
			}
			for i, c := range layout.Charts {
				if c.Width < 200 || c.Height < 20 {
					t.Errorf("chart %d not laid out: %+v", i, c)
				}
			}
			if len(layout.Frames) != page.frms {
				t.Errorf("%d frames, want %d", len(layout.Frames), page.frms)
			}
			for _, f := range layout.Frames {
				if f.Width < 600 || f.Height < 300 {
					t.Errorf("cost frame not laid out: %+v", f)
				}
			}
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("%s: %d images, %d tables, %d charts, %d frames; screenshot %s (%d bytes); %d elements wider than the window",
				page.file, len(layout.Images), len(layout.Tables), len(layout.Charts), len(layout.Frames), filepath.Join(out, page.shot), len(shot), layout.Overlap)
		})
	}
}

// openPage opens path in a new tab of alloc's browser and returns its
// layout, what went wrong while it loaded (console errors and warnings,
// exceptions, error log entries, requests to anything but the file itself
// and data: URLs), and a full-page PNG screenshot.
func openPage(t *testing.T, alloc context.Context, path string) (pageLayout, []string, []byte) {
	t.Helper()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	note := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				note("console " + string(e.Type))
			}
		case *runtime.EventExceptionThrown:
			note("exception: " + e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				note("log error: " + e.Entry.Text)
			}
		case *network.EventRequestWillBeSent:
			if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") && u != "about:srcdoc" && u != "about:blank" {
				note("external request: " + u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("body")); err != nil {
		t.Fatal(err)
	}
	layout, err := chromedp.Run(bctx, chromedp.Evaluate[pageLayout](measure))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return layout, slices.Clone(problems), shot
}
