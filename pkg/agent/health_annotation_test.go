package agent

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// fakeNodes is a NodeClient over a fake clientset.
type fakeNodes struct{ c *fake.Clientset }

func (f fakeNodes) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	return f.c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (f fakeNodes) PatchNode(ctx context.Context, name string, pt types.PatchType, patch []byte) error {
	_, err := f.c.CoreV1().Nodes().Patch(ctx, name, pt, patch, metav1.PatchOptions{})
	return err
}

func TestHealthAnnotator(t *testing.T) {
	c := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{
		names.AnnotationGPUUnhealthy: "5", // left by a previous agent
		"other":                      "kept",
	}}})
	health := map[int]bool{0: true, 1: true, 2: true, 3: true}
	h := NewHealthAnnotator(fakeNodes{c}, "n1", func() map[int]bool { return health })
	annotation := func() (string, bool) {
		n, err := c.CoreV1().Nodes().Get(t.Context(), "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Annotations["other"] != "kept" {
			t.Fatalf("another annotation changed: %v", n.Annotations)
		}
		v, ok := n.Annotations[names.AnnotationGPUUnhealthy]
		return v, ok
	}
	patches := func() int {
		n := 0
		for _, a := range c.Actions() {
			if a.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}
	steps := []struct {
		name    string
		set     map[int]bool
		want    string
		present bool
		patches int
	}{
		{"all healthy removes a stale annotation", nil, "", false, 1},
		{"unchanged: no write", nil, "", false, 1},
		{"GPUs 3 and 1 fail", map[int]bool{3: false, 1: false}, "1,3", true, 2},
		{"GPU 1 recovers", map[int]bool{1: true}, "3", true, 3},
		{"GPU 3 recovers", map[int]bool{3: true}, "", false, 4},
	}
	for _, s := range steps {
		for k, v := range s.set {
			health[k] = v
		}
		if err := h.Sync(t.Context()); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		v, ok := annotation()
		if v != s.want || ok != s.present {
			t.Errorf("%s: annotation %q (present %v), want %q (present %v)", s.name, v, ok, s.want, s.present)
		}
		if got := patches(); got != s.patches {
			t.Errorf("%s: %d patches so far, want %d", s.name, got, s.patches)
		}
	}
}
