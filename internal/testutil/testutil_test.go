package testutil

import "testing"

func TestSeriesValueAndLines(t *testing.T) {
	const text = "# HELP m help\nm{a=\"1\"} 0.25\nm{a=\"2\"} 3e+09\nother 7\n"
	if v, ok := SeriesValue(text, `m{a="2"`); !ok || v != 3e9 {
		t.Errorf("SeriesValue = %v, %v", v, ok)
	}
	if _, ok := SeriesValue(text, `m{a="3"`); ok {
		t.Error("found a series that is not there")
	}
	if got := Lines(text, "m{"); got != "m{a=\"1\"} 0.25\nm{a=\"2\"} 3e+09" {
		t.Errorf("Lines = %q", got)
	}
}
