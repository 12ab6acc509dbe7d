package stack

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gpufleet/gpufleet/pkg/inference/router"
)

// TestRouterRules: the rules the stack gives its router decode, and split
// property-value between version 1 and the canary.
func TestRouterRules(t *testing.T) {
	for _, models := range [][]string{{ModelName, WideName}, {ModelName}} {
		rules, err := router.Decode([]byte(RouterRules(models)), "elsewhere")
		if err != nil {
			t.Fatalf("%v: %v", models, err)
		}
		if len(rules.Routes) != len(models) {
			t.Fatalf("%v: %d routes", models, len(rules.Routes))
		}
		var split []string
		for _, b := range rules.Routes[0].Backends {
			split = append(split, fmt.Sprintf("%s:%d", b.Version, *b.Weight))
		}
		if diff := cmp.Diff([]string{"1:90", "2:10"}, split); diff != "" {
			t.Errorf("property-value split (-want +got):\n%s", diff)
		}
		if ns := rules.Backends[0].Pods.Namespace; ns != Namespace {
			t.Errorf("pods namespace %q, want %q", ns, Namespace)
		}
	}
}
