package promsource

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// checkLabelName accepts the label names every Prometheus version does:
// [a-zA-Z_][a-zA-Z0-9_]*, without the "__" prefix Prometheus reserves.
func checkLabelName(name string) error {
	if !validName(name, false) {
		return fmt.Errorf("%q is not a valid Prometheus label name: it must match [a-zA-Z_][a-zA-Z0-9_]*", name)
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("label name %q is reserved for Prometheus' internal use (prefix __)", name)
	}
	return nil
}

// validName reports whether s is a legacy Prometheus label name or, with
// colon, metric name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			colon && r == ':' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// quote returns s as a PromQL double-quoted string literal. Besides the
// backslash, the double quote and the newline, it escapes every rune the
// PromQL lexer would reject or a reader could not see (control and other
// non-printable runes, U+FFFD) as \uXXXX or \UXXXXXXXX, so the literal
// unquotes (strconv.Unquote as PromQL does) to s. Label values must be
// UTF-8, so invalid UTF-8 is an error.
func quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError || !unicode.IsPrint(r):
			if r > 0xFFFF {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// matcher returns the PromQL label matcher name op "value".
func matcher(name, op, value string) (string, error) {
	q, err := quote(value)
	if err != nil {
		return "", fmt.Errorf("label %s: %w", name, err)
	}
	return name + op + q, nil
}

// alternation returns a regular expression that matches exactly the given
// strings (PromQL anchors it).
func alternation(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(quoted, "|")
}

// identityMatcher returns the matcher of the objects a query asks for:
// name="v" for one value, name=~"v1|v2|..." for more. values must be
// distinct.
func identityMatcher(name string, values []string) (string, error) {
	if len(values) == 1 {
		return matcher(name, "=", values[0])
	}
	return matcher(name, "=~", alternation(values))
}

// selectorMatchers converts sel into PromQL label matchers, one per
// requirement, in the selector's (key) order. Labels in reserved are set by
// the adapter and cannot be selected. selectable is false for a selector
// that selects nothing (labels.Nothing()). The error lists every bad
// requirement.
func selectorMatchers(sel labels.Selector, reserved ...string) (matchers []string, selectable bool, err error) {
	if sel == nil {
		return nil, true, nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, false, nil
	}
	var errs []error
	for _, r := range reqs {
		m, err := requirementMatcher(r, reserved)
		if err != nil {
			errs = append(errs, fmt.Errorf("selector requirement %q: %w", r.String(), err))
			continue
		}
		matchers = append(matchers, m)
	}
	if len(errs) > 0 {
		return nil, true, errors.Join(errs...)
	}
	return matchers, true, nil
}

func requirementMatcher(r labels.Requirement, reserved []string) (string, error) {
	key := r.Key()
	if err := checkLabelName(key); err != nil {
		return "", err
	}
	if slices.Contains(reserved, key) {
		return "", fmt.Errorf("label %q cannot be selected: the adapter sets it to the objects asked for", key)
	}
	values := r.ValuesUnsorted()
	slices.Sort(values)
	values = slices.Compact(values)
	op := r.Operator()
	switch op {
	case selection.Equals, selection.DoubleEquals, selection.NotEquals:
		if len(values) != 1 {
			return "", fmt.Errorf("operator %q needs exactly one value, got %d", op, len(values))
		}
		if op == selection.NotEquals {
			return matcher(key, "!=", values[0])
		}
		return matcher(key, "=", values[0])
	case selection.In, selection.NotIn:
		if len(values) == 0 {
			return "", fmt.Errorf("operator %q needs at least one value", op)
		}
		if op == selection.NotIn {
			return matcher(key, "!~", alternation(values))
		}
		return matcher(key, "=~", alternation(values))
	case selection.Exists, selection.DoesNotExist:
		if len(values) != 0 {
			return "", fmt.Errorf("operator %q takes no values, got %d", op, len(values))
		}
		if op == selection.DoesNotExist {
			return key + `=""`, nil
		}
		return key + `=~".+"`, nil
	case selection.GreaterThan, selection.LessThan:
		return "", fmt.Errorf("operator %q is not supported: PromQL label matchers compare strings, not numbers; use =, !=, in, notin, exists or not-exists (!key)", op)
	default:
		return "", fmt.Errorf("operator %q is not supported", op)
	}
}

// formatDuration writes d (whole milliseconds) as a PromQL duration in its
// largest whole unit, e.g. "1m", "90s", "1500ms": single-unit durations
// parse in every Prometheus version.
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// buildQuery returns the instant query that computes m for the groups of
// groupBy over the series that match every matcher, e.g.
//
//	sum by (namespace, pod) (rate(inference_requests_total{namespace="ns",pod=~"a|b"}[1m]))
func buildQuery(m source.Metric, groupBy, matchers []string, window time.Duration) (string, error) {
	if !validName(m.Series, true) {
		return "", fmt.Errorf("series %q is not a valid Prometheus metric name", m.Series)
	}
	selector := m.Series + "{" + strings.Join(matchers, ",") + "}"
	var agg, inner string
	switch m.Kind {
	case source.Rate:
		agg, inner = "sum", "rate("+selector+"["+formatDuration(window)+"])"
	case source.Sum:
		agg, inner = "sum", selector
	case source.Mean:
		agg, inner = "avg", selector
	default:
		return "", fmt.Errorf("unknown metric kind %d", m.Kind)
	}
	return agg + " by (" + strings.Join(groupBy, ", ") + ") (" + inner + ")", nil
}
