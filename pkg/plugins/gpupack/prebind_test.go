package gpupack

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	fwk "k8s.io/kube-scheduler/framework"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// bindHandle is the little of a framework handle Bind and PreBind use: a
// client, no API cacher, and the profile's plugins.
type bindHandle struct {
	fwk.Handle
	client  kubernetes.Interface
	plugins *schedconfig.Plugins
}

func (h bindHandle) ClientSet() kubernetes.Interface   { return h.client }
func (h bindHandle) APICacher() fwk.APICacher          { return nil }
func (h bindHandle) ListPlugins() *schedconfig.Plugins { return h.plugins }

func bindersOf(names ...string) *schedconfig.Plugins {
	p := &schedconfig.Plugins{}
	for _, n := range names {
		p.Bind.Enabled = append(p.Bind.Enabled, schedconfig.Plugin{Name: n})
	}
	return p
}

func TestBindWritesIndicesWithTheBinding(t *testing.T) {
	pod := gpuPod("model-0", 1000, 2, 0)
	client := fake.NewClientset(pod)
	p := &GPUPack{handle: bindHandle{client: client, plugins: bindersOf(Name, "DefaultBinder")}, ledger: NewLedger(), workload: NewWorkload(10, 95), strategy: gpuFleet{}}
	state := framework.NewCycleState()
	if _, st := p.PreFilter(context.Background(), state, pod, nil); !st.IsSuccess() {
		t.Fatal(st)
	}
	p.ledger.Reserve(pod.UID, "v100-0", []int{3, 5})

	if _, st := p.PreBindPreFlight(context.Background(), state, pod, "v100-0"); !st.IsSkip() {
		t.Errorf("PreBindPreFlight = %v, want Skip when GPUPack binds", st)
	}
	if st := p.Bind(context.Background(), state, pod, "v100-0"); !st.IsSuccess() {
		t.Fatalf("Bind: %v", st)
	}
	var binding *corev1.Binding
	for _, a := range client.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetSubresource() == "binding" {
			binding, _ = c.GetObject().(*corev1.Binding)
		}
	}
	if binding == nil || binding.Annotations[names.AnnotationGPUIndices] != "3,5" || binding.Target.Name != "v100-0" {
		t.Fatalf("binding sent: %+v, want annotation %s=3,5", binding, names.AnnotationGPUIndices)
	}
	// A CPU-only pod is left to the next binder.
	cpu := newPod("cpu", withContainer(res(1000, 0, 0)))
	cs := framework.NewCycleState()
	p.PreFilter(context.Background(), cs, cpu, nil)
	if st := p.Bind(context.Background(), cs, cpu, "v100-0"); !st.IsSkip() {
		t.Errorf("Bind of a CPU-only pod = %v, want Skip", st)
	}
}

func TestPreBindPatchesWhenAnotherPluginBinds(t *testing.T) {
	pod := gpuPod("model-0", 1000, 2, 0)
	client := fake.NewClientset(pod)
	p := &GPUPack{handle: bindHandle{client: client, plugins: bindersOf("DefaultBinder", Name)}, ledger: NewLedger(), workload: NewWorkload(10, 95), strategy: gpuFleet{}}
	state := framework.NewCycleState()
	if _, st := p.PreFilter(context.Background(), state, pod, nil); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.PreBind(context.Background(), state, pod, "v100-0"); st.IsSuccess() {
		t.Error("PreBind without a reservation succeeded")
	}
	p.ledger.Reserve(pod.UID, "v100-0", []int{3, 5})
	if _, st := p.PreBindPreFlight(context.Background(), state, pod, "v100-0"); !st.IsSuccess() {
		t.Fatalf("PreBindPreFlight = %v, want Success when another plugin binds", st)
	}
	if st := p.PreBind(context.Background(), state, pod, "v100-0"); !st.IsSuccess() {
		t.Fatalf("PreBind: %v", st)
	}
	got, err := client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[names.AnnotationGPUIndices] != "3,5" {
		t.Errorf("pod annotations after PreBind: %v", got.Annotations)
	}
}
