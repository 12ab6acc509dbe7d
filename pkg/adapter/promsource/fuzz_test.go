package promsource

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// FuzzSelectorMatchers converts arbitrary one-requirement selectors. It
// never panics; a conversion that succeeds gives a matcher with a valid
// label name, a known operator and a string literal that PromQL's lexer
// accepts and that unquotes (strconv.Unquote, as PromQL does) to the value
// or to a regex that matches exactly the requirement's values.
func FuzzSelectorMatchers(f *testing.F) {
	f.Add("model", "=", "m", "")
	f.Add("model", "==", `a"b\c`, "")
	f.Add("model", "!=", "line\nbreak", "")
	f.Add("model", "in", "a.b", "c|d")
	f.Add("model", "notin", "(.*)", "")
	f.Add("model", "in", "\ufffd", "\x00")
	f.Add("model", "exists", "", "")
	f.Add("model", "!", "", "")
	f.Add("gpus", "gt", "1", "")
	f.Add("app.kubernetes.io/name", "=", "x", "")
	f.Add("pod", "=", "x", "")
	f.Add("__name__", "=", "up", "")
	f.Add("model", "=", "\xff", "")
	f.Add("_", "in", "", "")
	f.Fuzz(func(t *testing.T, key, op, v1, v2 string) {
		vals := []string{v1}
		if v2 != "" {
			vals = append(vals, v2)
		}
		if op == string(selection.Exists) || op == string(selection.DoesNotExist) {
			vals = nil
		}
		// Build without Kubernetes' validation: a selector may hold anything.
		r, _ := labels.NewRequirement(key, selection.Operator(op), vals)
		matchers, _, err := selectorMatchers(labels.NewSelector().Add(*r), "namespace", "pod", "node")
		if err != nil {
			return
		}
		if len(matchers) != 1 {
			t.Fatalf("%d matchers %q for one requirement", len(matchers), matchers)
		}
		checkMatcher(t, matchers[0], key, selection.Operator(op), vals)
	})
}

func checkMatcher(t *testing.T, m, key string, op selection.Operator, vals []string) {
	t.Helper()
	name, rest, found := strings.Cut(m, `"`)
	if !found {
		t.Fatalf("matcher %q has no string literal", m)
	}
	literal := `"` + rest
	var promOp string
	for _, o := range []string{"=~", "!~", "!=", "="} {
		if n, ok := strings.CutSuffix(name, o); ok {
			name, promOp = n, o
			break
		}
	}
	if name != key || !validName(name, false) || strings.HasPrefix(name, "__") || slices.Contains([]string{"namespace", "pod", "node"}, name) {
		t.Fatalf("matcher %q: label name %q for key %q", m, name, key)
	}
	// What PromQL's lexer rejects inside a string.
	if !utf8.ValidString(literal) || strings.ContainsAny(literal, "\n\ufffd") {
		t.Fatalf("matcher %q: literal PromQL cannot lex", m)
	}
	value, err := strconv.Unquote(literal)
	if err != nil {
		t.Fatalf("matcher %q: literal does not unquote: %v", m, err)
	}
	switch op {
	case selection.Equals, selection.DoubleEquals, selection.NotEquals:
		want := map[bool]string{true: "!=", false: "="}[op == selection.NotEquals]
		if promOp != want || value != vals[0] {
			t.Fatalf("matcher %q for %s %q", m, op, vals[0])
		}
	case selection.In, selection.NotIn:
		want := map[bool]string{true: "!~", false: "=~"}[op == selection.NotIn]
		if promOp != want {
			t.Fatalf("matcher %q for %s", m, op)
		}
		re, err := regexp.Compile("^(?:" + value + ")$") // PromQL anchors regexes so
		if err != nil {
			t.Fatalf("matcher %q: regex does not compile: %v", m, err)
		}
		for _, v := range vals {
			if !re.MatchString(v) {
				t.Fatalf("matcher %q: regex does not match value %q", m, v)
			}
			if other := v + "x"; !slices.Contains(vals, other) && re.MatchString(other) {
				t.Fatalf("matcher %q: regex matches %q, not a value", m, other)
			}
		}
	case selection.Exists:
		if m != key+`=~".+"` {
			t.Fatalf("matcher %q for exists", m)
		}
	case selection.DoesNotExist:
		if m != key+`=""` {
			t.Fatalf("matcher %q for does not exist", m)
		}
	default:
		t.Fatalf("operator %q converted to %q", op, m)
	}
}
