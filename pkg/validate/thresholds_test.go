package validate

import (
	"strings"
	"testing"
)

func TestParseThresholds(t *testing.T) {
	th, err := ParseThresholds([]byte("target: [y]\ngroupBy: kind\nmaxRMSE: 45\nminR2: 0.9\nwithin: {tolerance: 0.1, minShare: 0.8}\nmaxBiasGap: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *th.MaxRMSE != 45 || *th.MinR2 != 0.9 || th.Within.Tolerance != 0.1 || th.GroupBy != "kind" || th.MaxMAE != nil || !th.HasChecks() {
		t.Errorf("got %+v", th)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"maxRMS: 4", `unknown field "maxRMS"`},
		{"maxRMSE: -1", "maxRMSE: -1"},
		{"minR2: 1.5", "minR2: 1.5"},
		{"minAccuracy: 2", "minAccuracy: 2 must be between 0 and 1"},
		{"within: {tolerance: 0, minShare: 0.5}", "within.tolerance"},
		{"within: {tolerance: 0.1, minShare: 1.5}", "within.minShare"},
		{"maxBiasGap: 0.1", "needs groupBy"},
		{"target: ['']", "target[0] is empty"},
		{"maxRMSE: [1]", "thresholds"},
	} {
		if _, err := ParseThresholds([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one with %q", tc.yaml, err, tc.want)
		}
	}
	// Every problem at once.
	_, err = ParseThresholds([]byte("maxRMSE: -1\nmaxMAE: -2\n"))
	if err == nil || !strings.Contains(err.Error(), "maxRMSE") || !strings.Contains(err.Error(), "maxMAE") {
		t.Errorf("error %v does not name both fields", err)
	}
	if (Thresholds{}).HasChecks() {
		t.Error("empty thresholds check something")
	}
}
