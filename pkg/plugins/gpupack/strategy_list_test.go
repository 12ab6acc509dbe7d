package gpupack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gpufleet/gpufleet/apis/config/validation"
)

// Every strategy the args validation accepts exists, and no other.
func TestStrategiesMatchValidation(t *testing.T) {
	if diff := cmp.Diff(validation.Strategies, Strategies); diff != "" {
		t.Errorf("validation and plugin disagree on strategies (-validation +plugin):\n%s", diff)
	}
	for _, name := range Strategies {
		if s, err := NewStrategy(name); err != nil || s.Name() != name {
			t.Errorf("NewStrategy(%q) = %v, %v", name, s, err)
		}
	}
}
