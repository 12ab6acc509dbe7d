package scrape

import (
	"bytes"
	"cmp"
	"fmt"
	"mime"
	"slices"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Kind is the Prometheus type of a stored sample.
type Kind uint8

// Sample kinds. Untyped samples (no TYPE line) are treated like counters by
// Rate, as Prometheus does.
const (
	KindUntyped Kind = iota
	KindCounter
	KindGauge
)

// acceptHeader asks for the Prometheus text format first, then OpenMetrics.
const acceptHeader = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.9,*/*;q=0.1"

type labelPair struct{ name, value string }

// parsedSample is one kept sample of an exposition.
type parsedSample struct {
	metric string
	labels []labelPair // sorted by name
	value  float64
	kind   Kind
}

// parse decodes an exposition served with the given Content-Type, keeping
// only the samples whose name keep accepts. Prometheus text 0.0.4 is parsed
// by expfmt's TextParser directly; OpenMetrics text is first rewritten into
// the text format (see normalize), since expfmt has no OpenMetrics parser.
func parse(body []byte, contentType string, keep func(string) bool) ([]parsedSample, error) {
	om, err := isOpenMetrics(contentType)
	if err != nil {
		return nil, err
	}
	fams, err := textToMetricFamilies(normalize(body, om, keep))
	if err != nil {
		return nil, fmt.Errorf("parsing exposition: %w", err)
	}
	var out []parsedSample
	add := func(name string, m *dto.Metric, v float64, k Kind) {
		if keep != nil && !keep(name) {
			return
		}
		out = append(out, parsedSample{metric: name, labels: labelsOf(m), value: v, kind: k})
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue(), KindCounter)
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue(), KindGauge)
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue(), KindUntyped)
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				add(name+"_sum", m, s.GetSampleSum(), KindCounter)
				add(name+"_count", m, float64(s.GetSampleCount()), KindCounter)
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				add(name+"_sum", m, h.GetSampleSum(), KindCounter)
				add(name+"_count", m, count, KindCounter)
			}
		}
	}
	return out, nil
}

// textToMetricFamilies runs expfmt's text parser, turning its panics into
// errors: in v0.70 it dereferences nil on some malformed lines, e.g. "{}",
// and one target's bad body must not take the adapter down.
//
// Parsers are reused: each holds a 4 KiB read buffer that a new parser per
// scrape allocated again, a quarter of all the adapter's allocations with
// 10,000 pods scraped every second. A parser that panicked is dropped.
func textToMetricFamilies(text []byte) (fams map[string]*dto.MetricFamily, err error) {
	p := textParsers.Get().(*expfmt.TextParser)
	in := bytes.NewReader(text)
	defer func() {
		if r := recover(); r != nil {
			fams, err = nil, fmt.Errorf("malformed exposition (parser panic: %v)", r)
			return
		}
		in.Reset(nil) // the pooled parser keeps no scrape body alive
		textParsers.Put(p)
	}()
	return p.TextToMetricFamilies(in)
}

var textParsers = sync.Pool{New: func() any {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return &p
}}

// isOpenMetrics tells the text formats apart by media type. An empty or
// unknown type is read as Prometheus text, as Prometheus itself does.
func isOpenMetrics(contentType string) (bool, error) {
	if contentType == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, nil
	}
	switch mt {
	case expfmt.OpenMetricsType:
		return true, nil
	case expfmt.ProtoType:
		return false, fmt.Errorf("unsupported Content-Type %q: serve the Prometheus text or OpenMetrics text format", contentType)
	}
	return false, nil
}

func labelsOf(m *dto.Metric) []labelPair {
	ls := make([]labelPair, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		ls = append(ls, labelPair{l.GetName(), l.GetValue()})
	}
	slices.SortFunc(ls, func(a, b labelPair) int { return cmp.Compare(a.name, b.name) })
	return ls
}

// normalize drops what will not be stored before the parser allocates for
// it: HELP and plain comment lines, and sample lines whose (unquoted) name
// keep rejects. For OpenMetrics (om) it also rewrites the input into the
// Prometheus text format: it stops at "# EOF", drops UNIT lines and the
// "_created" samples of counters, histograms and summaries, renames a
// counter family "x" to its sample name "x_total" (and info "x" to
// "x_info", a gauge), maps stateset to gauge, drops TYPE lines of other
// types (their samples parse as untyped), and strips sample timestamps and
// exemplars (the scrape time is used instead). Lines it cannot read are
// passed on so that the parser reports them.
func normalize(body []byte, om bool, keep func(string) bool) []byte {
	out := make([]byte, 0, min(len(body), 64<<10))
	var family, familyType string
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		t := bytes.TrimLeft(line, " \t")
		if len(t) == 0 {
			continue
		}
		if t[0] == '#' {
			f := strings.Fields(string(t[1:]))
			if len(f) == 0 {
				continue
			}
			switch {
			case om && len(f) == 1 && f[0] == "EOF":
				return out
			case f[0] != "TYPE":
				continue // HELP, UNIT and plain comments
			case !om || len(f) != 3:
				out = append(append(out, t...), '\n')
				continue
			}
			family, familyType = f[1], f[2]
			switch familyType {
			case "counter":
				out = fmt.Appendf(out, "# TYPE %s_total counter\n", family)
			case "info":
				out = fmt.Appendf(out, "# TYPE %s_info gauge\n", family)
			case "stateset":
				out = fmt.Appendf(out, "# TYPE %s gauge\n", family)
			case "gauge", "histogram", "summary":
				out = fmt.Appendf(out, "# TYPE %s %s\n", family, familyType)
			}
			continue
		}
		name, rest := splitSample(t)
		if name != "" && keep != nil && !keep(name) {
			continue
		}
		if !om {
			out = append(append(out, t...), '\n')
			continue
		}
		if name == family+"_created" && (familyType == "counter" || familyType == "histogram" || familyType == "summary") {
			continue
		}
		fields := bytes.Fields(rest)
		if rest == nil || len(fields) == 0 {
			out = append(append(out, t...), '\n')
			continue
		}
		out = append(out, t[:len(t)-len(rest)]...)
		out = append(append(append(out, ' '), fields[0]...), '\n')
	}
	return out
}

// splitSample returns a sample line's metric name ("" when the name is
// quoted inside the braces) and what follows the name and label set (nil
// when the label set is not closed).
func splitSample(line []byte) (name string, rest []byte) {
	i := 0
	for i < len(line) && isNameByte(line[i]) {
		i++
	}
	name = string(line[:i])
	if i == len(line) || line[i] != '{' {
		return name, line[i:]
	}
	inQuote := false
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case inQuote && c == '\\':
			j++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return name, line[j+1:]
		}
	}
	return name, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
