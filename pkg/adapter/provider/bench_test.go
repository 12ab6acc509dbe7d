package provider

import (
	"context"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/source"
)

// BenchmarkGetMetricBySelector is the provider's own cost of an HPA query
// over 1,000 of 10,000 pods (the source answers from a map).
func BenchmarkGetMetricBySelector(b *testing.B) {
	const pods, groups = 10000, 10
	var objs []runtime.Object
	values := map[string]source.Sample{}
	now := time.Now()
	for i := range pods {
		name := "scale-" + strconv.Itoa(i)
		p := testPod("bench", name, "node-"+strconv.Itoa(i%100))
		p.Labels = map[string]string{"role": "scale", "group": "g" + strconv.Itoa(i%groups)}
		objs = append(objs, p)
		values["bench/"+name] = source.Sample{Value: 1, Timestamp: now, Window: 2 * time.Second}
	}
	c, err := cluster.New(fake.NewClientset(objs...))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	p := New(c, &fakeSource{values: map[string]map[string]source.Sample{source.RequestsPerSecond: values}})
	info := cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: source.RequestsPerSecond}
	sel := labels.SelectorFromSet(labels.Set{"role": "scale", "group": "g3"})
	b.ResetTimer()
	for b.Loop() {
		list, err := p.GetMetricBySelector(context.Background(), "bench", sel, info, labels.Everything())
		if err != nil || len(list.Items) != pods/groups {
			b.Fatalf("%d items, err %v", len(list.Items), err)
		}
	}
}
