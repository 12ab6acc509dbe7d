package router

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func rollout(status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "property-value", "namespace": "models"},
		"spec": map[string]any{"strategy": map[string]any{"canary": map[string]any{
			"stableService": "pv-stable", "canaryService": "pv-canary",
			"steps": []any{
				map[string]any{"setWeight": int64(10)},
				map[string]any{"pause": map[string]any{}},
				map[string]any{"setWeight": int64(50)},
				map[string]any{"pause": map[string]any{"duration": "1m"}},
			},
		}}},
		"status": status,
	}}
}

func TestCanaryWeight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status map[string]any
		want   int32
	}{
		{"promoted", map[string]any{"stableRS": "abc", "currentPodHash": "abc", "currentStepIndex": int64(4)}, 0},
		{"first step", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(0)}, 10},
		{"paused after 10", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(1)}, 10},
		{"paused after 50", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(3)}, 50},
		{"past the steps", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(4)}, 100},
		{"aborted", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(3), "abort": true}, 0},
		{"traffic router's weight", map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(3),
			"canary": map[string]any{"weights": map[string]any{"canary": map[string]any{"weight": int64(25)}}}}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw, err := canaryWeight(rollout(tc.status))
			if err != nil {
				t.Fatal(err)
			}
			if rw.canary != tc.want || rw.canarySvc != "pv-canary" || rw.stableSvc != "pv-stable" {
				t.Errorf("canaryWeight = %+v, want canary %d of pv-canary/pv-stable", rw, tc.want)
			}
		})
	}
}

// TestRolloutDrivesWeights: a route with weightsFrom follows the Rollout.
func TestRolloutDrivesWeights(t *testing.T) {
	ro := rollout(map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(1)})
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{RolloutGVR: "RolloutList"}, ro)
	rules := `apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- {name: stable, service: {name: pv-stable}}
- {name: canary, service: {name: pv-canary}}
routes:
- name: property-value
  backends: [{backend: canary, weight: 0}, {backend: stable, weight: 100}]
  weightsFrom: {rollout: {name: property-value}}
`
	r, _ := newTestRouter(t, Config{Dynamic: dyn}, rules)
	sp := r.table.Load().routes[0].split
	poll(t, "the Rollout's 10 % applied", func() bool { w := *sp.weights.Load(); return w[0] == 10 && w[1] == 90 })

	ro = rollout(map[string]any{"stableRS": "abc", "currentPodHash": "def", "currentStepIndex": int64(3)})
	if _, err := dyn.Resource(RolloutGVR).Namespace("models").Update(t.Context(), ro, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Rollout's 50 % applied", func() bool { w := *sp.weights.Load(); return w[0] == 50 && w[1] == 50 })
}
