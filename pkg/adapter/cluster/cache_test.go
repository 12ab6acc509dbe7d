package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// watchedResources are the resources the cache watches.
var watchedResources = []string{"pods", "replicasets", "deployments", "statefulsets", "nodes"}

// startCache starts a Cache over client until the test ends, and waits
// until every informer watches: the fake clientset does not replay objects
// created between an informer's list and its watch.
func startCache(t *testing.T, client *fake.Clientset) *Cache {
	t.Helper()
	c, err := New(client)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.Synced() {
		t.Error("Synced before Start")
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !c.Synced() {
		t.Error("not Synced after Start")
	}
	poll(t, "the informers to watch", func() bool {
		watching := map[string]bool{}
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" {
				watching[a.GetResource().Resource] = true
			}
		}
		for _, r := range watchedResources {
			if !watching[r] {
				return false
			}
		}
		return true
	})
	return c
}

// poll waits for cond, failing the test after a deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func controllerRef(kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: new(true)}
}

func ownerRef(kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid}
}

// pod is a running pod on node-a; opts edit it.
func pod(ns, name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withLabels(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func ownedBy(refs ...metav1.OwnerReference) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.OwnerReferences = refs }
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func TestStripKeepsOnlyWhatTheAdapterReads(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	owners := []metav1.OwnerReference{controllerRef("ReplicaSet", "web-1", "uid-rs")}
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         "ml",
			Name:              "web-1-abc",
			UID:               "uid-pod",
			Labels:            map[string]string{"app": "web"},
			OwnerReferences:   owners,
			DeletionTimestamp: &deleted,
			Finalizers:        []string{"example.com/keep"},
			GenerateName:      "web-1-",
			Annotations: map[string]string{
				"gpufleet.io/scrape":                               "true",
				"gpufleet.io/metrics-port":                         "9000",
				"kubectl.kubernetes.io/last-applied-configuration": "{}",
				"example.com/gpufleet.io/scrape":                   "true",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "server", Image: "inference:1"}},
			Hostname:   "web",
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  "10.0.0.7",
			PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}},
			HostIP: "192.168.0.1",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "r", Message: "m", LastTransitionTime: deleted},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "server", Ready: true}},
		},
	}
	wantPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         "ml",
			Name:              "web-1-abc",
			UID:               "uid-pod",
			Labels:            map[string]string{"app": "web"},
			OwnerReferences:   owners,
			DeletionTimestamp: &deleted,
			Annotations:       map[string]string{"gpufleet.io/scrape": "true", "gpufleet.io/metrics-port": "9000"},
		},
		Spec: corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      "10.0.0.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Namespace:       "ml",
			Name:            name,
			UID:             types.UID("uid-" + name),
			Labels:          map[string]string{"app": "web"},
			OwnerReferences: owners,
			Annotations:     map[string]string{"gpufleet.io/gpu-model": "H100", "other": "x"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}},
		}
	}
	stripped := func(name string) metav1.ObjectMeta {
		m := meta(name)
		m.Annotations, m.ManagedFields = nil, nil
		return m
	}
	// Workloads keep their gpufleet.io annotations (the forecast's
	// gpufleet.io/startup-seconds).
	strippedWorkload := func(name string) metav1.ObjectMeta {
		m := stripped(name)
		m.Annotations = map[string]string{"gpufleet.io/gpu-model": "H100"}
		return m
	}
	replicas := int32(3)
	node := &corev1.Node{ObjectMeta: meta("node-a"), Spec: corev1.NodeSpec{PodCIDR: "10.0.0.0/24"}, Status: corev1.NodeStatus{Capacity: corev1.ResourceList{}}}
	node.Namespace, node.OwnerReferences = "", nil
	wantNode := &corev1.Node{ObjectMeta: stripped("node-a")}
	wantNode.Namespace, wantNode.OwnerReferences = "", nil

	tests := []struct {
		name string
		in   runtime.Object
		want runtime.Object
	}{
		{name: "pod", in: full, want: wantPod},
		{name: "pod without gpufleet annotations", in: pod("ml", "plain", func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "b"} }), want: pod("ml", "plain")},
		{
			name: "pod not ready",
			in: pod("ml", "starting", func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
			}),
			want: pod("ml", "starting", func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
			}),
		},
		{name: "node", in: node, want: wantNode},
		{
			name: "replicaset",
			in:   &appsv1.ReplicaSet{ObjectMeta: meta("web-1"), Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}},
			want: &appsv1.ReplicaSet{ObjectMeta: stripped("web-1")},
		},
		{
			name: "deployment",
			in:   &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Replicas: &replicas}, Status: appsv1.DeploymentStatus{Replicas: 3}},
			want: &appsv1.Deployment{ObjectMeta: strippedWorkload("web")},
		},
		{
			name: "statefulset",
			in:   &appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: "db"}},
			want: &appsv1.StatefulSet{ObjectMeta: strippedWorkload("db")},
		},
		{name: "anything else passes unchanged", in: &corev1.ConfigMap{ObjectMeta: meta("cm"), Data: map[string]string{"k": "v"}}, want: &corev1.ConfigMap{ObjectMeta: meta("cm"), Data: map[string]string{"k": "v"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in.DeepCopyObject()
			got, err := strip(in)
			if err != nil {
				t.Fatalf("strip: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("strip (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.in, in); diff != "" {
				t.Errorf("strip modified its input (-before +after):\n%s", diff)
			}
		})
	}

	// The informers store the stripped objects.
	client := fake.NewClientset(full)
	c := startCache(t, client)
	got := c.Pod("ml", "web-1-abc")
	if diff := cmp.Diff(wantPod, got, cmpopts.IgnoreFields(metav1.ObjectMeta{}, "ResourceVersion")); diff != "" {
		t.Errorf("cached pod (-want +got):\n%s", diff)
	}
}

func TestObjectsBeforeAndAfterStart(t *testing.T) {
	client := fake.NewClientset(
		pod("ml", "before"),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
	)
	c := startCache(t, client)
	ctx := t.Context()

	if c.Pod("ml", "before") == nil {
		t.Error("pod created before Start is missing")
	}
	if !c.HasNode("node-a") {
		t.Error("node created before Start is missing")
	}
	if c.Pod("ml", "after") != nil || c.HasNode("node-b") {
		t.Fatal("objects visible before they exist")
	}

	if _, err := client.CoreV1().Pods("ml").Create(ctx, pod("ml", "after"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web", UID: "uid-web"}}
	if _, err := client.AppsV1().Deployments("ml").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "objects created after Start", func() bool {
		_, found, _ := c.Workload("Deployment", "ml", "web")
		return c.Pod("ml", "after") != nil && c.HasNode("node-b") && found
	})

	// Updates and deletes reach the cache too.
	changed := make(chan struct{}, 100)
	if err := c.OnPodChange(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatalf("OnPodChange: %v", err)
	}
	failed := pod("ml", "after", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })
	if _, err := client.CoreV1().Pods("ml").UpdateStatus(ctx, failed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pod update", func() bool {
		p := c.Pod("ml", "after")
		return p != nil && p.Status.Phase == corev1.PodFailed
	})
	if err := client.CoreV1().Pods("ml").Delete(ctx, "before", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pod delete", func() bool { return c.Pod("ml", "before") == nil })
	poll(t, "a pod change callback", func() bool { return len(changed) > 0 })
}

func TestPods(t *testing.T) {
	client := fake.NewClientset(
		pod("ml", "b", withLabels("app", "web", "tier", "gpu")),
		pod("ml", "a", withLabels("app", "web")),
		pod("ml", "c", withLabels("app", "db")),
		pod("batch", "z", withLabels("app", "web")),
		pod("batch", "y"),
		pod("aaa", "x", withLabels("app", "web")),
	)
	c := startCache(t, client)
	tests := []struct {
		name      string
		namespace string
		selector  string
		want      []string
	}{
		{name: "all namespaces, everything", selector: "", want: []string{"aaa/x", "batch/y", "batch/z", "ml/a", "ml/b", "ml/c"}},
		{name: "one namespace", namespace: "ml", want: []string{"ml/a", "ml/b", "ml/c"}},
		{name: "one namespace with selector", namespace: "ml", selector: "app=web", want: []string{"ml/a", "ml/b"}},
		{name: "all namespaces with selector", selector: "app=web", want: []string{"aaa/x", "batch/z", "ml/a", "ml/b"}},
		{name: "set selector", namespace: "ml", selector: "app in (db),!tier", want: []string{"ml/c"}},
		{name: "exists selector", selector: "tier", want: []string{"ml/b"}},
		{name: "no match", namespace: "ml", selector: "app=none", want: []string{}},
		{name: "unknown namespace", namespace: "nope", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, names(c.Pods(tc.namespace, sel))); diff != "" {
				t.Errorf("Pods(%q, %q) (-want +got):\n%s", tc.namespace, tc.selector, diff)
			}
		})
	}
	if diff := cmp.Diff([]string{"ml/a", "ml/b", "ml/c"}, names(c.Pods("ml", nil))); diff != "" {
		t.Errorf("Pods(ml, nil) (-want +got):\n%s", diff)
	}
}

func TestWorkloadPods(t *testing.T) {
	objs := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web", UID: "uid-web", Labels: map[string]string{"app": "web"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "idle", UID: "uid-idle", Labels: map[string]string{"app": "idle"}}},
		// Two ReplicaSets of web (a rollout), one of another deployment, one
		// that only refers to web without controlling it.
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web-1", UID: "uid-web-1", OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", "web", "uid-web")}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web-2", UID: "uid-web-2", OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", "web", "uid-web")}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "other-1", UID: "uid-other-1", OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", "other", "uid-other")}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "adopted", UID: "uid-adopted", OwnerReferences: []metav1.OwnerReference{ownerRef("Deployment", "web", "uid-web")}}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "db", UID: "uid-db", Labels: map[string]string{"app": "db"}}},
		pod("ml", "web-2-b", ownedBy(controllerRef("ReplicaSet", "web-2", "uid-web-2"))),
		pod("ml", "web-1-a", ownedBy(controllerRef("ReplicaSet", "web-1", "uid-web-1"))),
		pod("ml", "web-1-c", ownedBy(ownerRef("Something", "x", "uid-x"), controllerRef("ReplicaSet", "web-1", "uid-web-1"))),
		pod("ml", "other-1-a", ownedBy(controllerRef("ReplicaSet", "other-1", "uid-other-1"))),
		pod("ml", "adopted-a", ownedBy(controllerRef("ReplicaSet", "adopted", "uid-adopted"))),
		pod("ml", "orphan", ownedBy(ownerRef("ReplicaSet", "web-1", "uid-web-1"))),
		pod("ml", "direct", ownedBy(controllerRef("Deployment", "web", "uid-web"))),
		pod("ml", "db-1", ownedBy(controllerRef("StatefulSet", "db", "uid-db"))),
		pod("ml", "db-0", ownedBy(controllerRef("StatefulSet", "db", "uid-db"))),
		pod("ml", "db-x", ownedBy(ownerRef("StatefulSet", "db", "uid-db"))),
	}
	c := startCache(t, fake.NewClientset(objs...))

	tests := []struct {
		name string
		kind string
		wl   string
		want []string
	}{
		{name: "deployment through its replicasets", kind: "Deployment", wl: "web", want: []string{"ml/web-1-a", "ml/web-1-c", "ml/web-2-b"}},
		{name: "deployment with no pods", kind: "Deployment", wl: "idle", want: []string{}},
		{name: "statefulset", kind: "StatefulSet", wl: "db", want: []string{"ml/db-0", "ml/db-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, ok, err := c.Workload(tc.kind, "ml", tc.wl)
			if err != nil || !ok {
				t.Fatalf("Workload(%s, ml, %s) = %v, %v, %v", tc.kind, tc.wl, w, ok, err)
			}
			if diff := cmp.Diff(tc.want, names(c.WorkloadPods(w))); diff != "" {
				t.Errorf("WorkloadPods (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("Workload", func(t *testing.T) {
		w, ok, err := c.Workload("StatefulSet", "ml", "db")
		if diff := cmp.Diff(Workload{Kind: "StatefulSet", Namespace: "ml", Name: "db", UID: "uid-db"}, w); diff != "" || !ok || err != nil {
			t.Errorf("Workload(StatefulSet, ml, db): ok=%v err=%v (-want +got):\n%s", ok, err, diff)
		}
		if _, ok, err := c.Workload("Deployment", "ml", "db"); ok || err != nil {
			t.Errorf("Workload(Deployment, ml, db) = %v, %v; want not found", ok, err)
		}
		if _, ok, err := c.Workload("Deployment", "other-ns", "web"); ok || err != nil {
			t.Errorf("Workload(Deployment, other-ns, web) = %v, %v; want not found", ok, err)
		}
		if _, _, err := c.Workload("DaemonSet", "ml", "web"); err == nil {
			t.Error("Workload(DaemonSet) succeeded, want an error")
		}
	})
}

func TestWorkloads(t *testing.T) {
	objs := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "web", UID: "uid-web", Labels: map[string]string{"app": "web", "tier": "gpu"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "api", UID: "uid-api", Labels: map[string]string{"app": "api"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web", UID: "uid-other-web", Labels: map[string]string{"app": "web"}}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "db", UID: "uid-db", Labels: map[string]string{"app": "db"}}},
	}
	c := startCache(t, fake.NewClientset(objs...))
	dep := func(ns, name, uid string) Workload {
		return Workload{Kind: "Deployment", Namespace: ns, Name: name, UID: types.UID(uid)}
	}
	tests := []struct {
		name      string
		kind      string
		namespace string
		selector  string
		want      []Workload
		wantErr   bool
	}{
		{name: "all deployments of a namespace, sorted", kind: "Deployment", namespace: "ml", want: []Workload{dep("ml", "api", "uid-api"), dep("ml", "web", "uid-web")}},
		{name: "selector", kind: "Deployment", namespace: "ml", selector: "tier=gpu", want: []Workload{dep("ml", "web", "uid-web")}},
		{name: "other namespace", kind: "Deployment", namespace: "other", selector: "app=web", want: []Workload{dep("other", "web", "uid-other-web")}},
		{name: "no match", kind: "Deployment", namespace: "ml", selector: "app=db"},
		{name: "statefulsets", kind: "StatefulSet", namespace: "ml", want: []Workload{{Kind: "StatefulSet", Namespace: "ml", Name: "db", UID: "uid-db"}}},
		{name: "unsupported kind", kind: "ReplicaSet", namespace: "ml", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Workloads(tc.kind, tc.namespace, sel)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Workloads error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Workloads(%s, %s, %q) (-want +got):\n%s", tc.kind, tc.namespace, tc.selector, diff)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	node := func(name string, kv ...string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
		return n
	}
	c := startCache(t, fake.NewClientset(
		node("gpu-2", "gpu", "h100"),
		node("gpu-1", "gpu", "a100"),
		node("cpu-1"),
	))
	tests := []struct {
		selector string
		want     []string
	}{
		{selector: "", want: []string{"cpu-1", "gpu-1", "gpu-2"}},
		{selector: "gpu", want: []string{"gpu-1", "gpu-2"}},
		{selector: "gpu=h100", want: []string{"gpu-2"}},
		{selector: "!gpu", want: []string{"cpu-1"}},
		{selector: "gpu=v100"},
	}
	for _, tc := range tests {
		t.Run(tc.selector, func(t *testing.T) {
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Nodes(sel), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Nodes(%q) (-want +got):\n%s", tc.selector, diff)
			}
		})
	}
	if got := c.Nodes(nil); len(got) != 3 {
		t.Errorf("Nodes(nil) = %v, want every node", got)
	}
	if !c.HasNode("gpu-1") || c.HasNode("gpu-3") {
		t.Errorf("HasNode(gpu-1), HasNode(gpu-3) = %v, %v; want true, false", c.HasNode("gpu-1"), c.HasNode("gpu-3"))
	}
}

func TestRunning(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{name: "running", pod: pod("ml", "p"), want: true},
		{name: "running but not ready still runs", pod: pod("ml", "p", func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		}), want: true},
		{name: "pending", pod: pod("ml", "p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending })},
		{name: "succeeded", pod: pod("ml", "p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
		{name: "failed", pod: pod("ml", "p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
		{name: "unknown", pod: pod("ml", "p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodUnknown })},
		{name: "being deleted", pod: pod("ml", "p", func(p *corev1.Pod) { p.DeletionTimestamp = &now })},
		{name: "not scheduled", pod: pod("ml", "p", func(p *corev1.Pod) { p.Spec.NodeName = "" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Running(tc.pod); got != tc.want {
				t.Errorf("Running = %v, want %v", got, tc.want)
			}
		})
	}
}

// The label index answers exactly what a full scan does, for every kind of
// selector, and also after labels change.
func TestPodsLabelIndexMatchesScan(t *testing.T) {
	var objs []runtime.Object
	for i := range 60 {
		ns := []string{"a", "b"}[i%2]
		objs = append(objs, pod(ns, fmt.Sprintf("p%02d", i), withLabels("app", []string{"x", "y", "z"}[i%3], "tier", []string{"gpu", "cpu"}[i%4/2])))
	}
	client := fake.NewClientset(objs...)
	c := startCache(t, client)
	scan := func(ns string, sel labels.Selector) []string {
		var out []string
		for _, p := range c.Pods("", nil) {
			if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
				out = append(out, p.Namespace+"/"+p.Name)
			}
		}
		return out
	}
	check := func() {
		t.Helper()
		for _, s := range []string{"app=x", "app==y,tier=gpu", "app in (x,z)", "app in (x,z),tier!=cpu", "app notin (x)", "tier", "!tier", "app=none", "app in (x),app in (y)"} {
			sel, err := labels.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range []string{"a", "b"} {
				got := names(c.Pods(ns, sel))
				if diff := cmp.Diff(scan(ns, sel), got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Pods(%q, %q) differs from a scan (-scan +got):\n%s", ns, s, diff)
				}
			}
		}
	}
	check()
	p, err := client.CoreV1().Pods("a").Get(context.Background(), "p00", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["app"] = "z"
	if _, err := client.CoreV1().Pods("a").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the relabelled pod", func() bool { return c.Pod("a", "p00").Labels["app"] == "z" })
	check()
}

func TestStripKeepsEffectiveGPURequests(t *testing.T) {
	req := func(kv ...string) corev1.ResourceRequirements {
		rl := corev1.ResourceList{}
		for i := 0; i+1 < len(kv); i += 2 {
			rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return corev1.ResourceRequirements{Requests: rl}
	}
	tests := []struct {
		name       string
		containers []corev1.Container
		init       []corev1.Container
		want       corev1.ResourceList
	}{
		{"no GPUs", []corev1.Container{{Name: "a", Resources: req("cpu", "1")}}, nil, nil},
		{"summed over containers, CPU dropped",
			[]corev1.Container{{Name: "a", Resources: req("nvidia.com/gpu", "1", "cpu", "2")}, {Name: "b", Resources: req("nvidia.com/gpu", "1", "gpufleet.io/gpu-milli", "300")}},
			nil, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2"), "gpufleet.io/gpu-milli": resource.MustParse("300")}},
		{"a larger init container wins",
			[]corev1.Container{{Name: "a", Resources: req("nvidia.com/gpu", "1")}},
			[]corev1.Container{{Name: "i", Resources: req("nvidia.com/gpu", "3")}},
			corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("3")}},
		{"a smaller init container does not",
			[]corev1.Container{{Name: "a", Resources: req("gpufleet.io/gpu-milli", "500")}},
			[]corev1.Container{{Name: "i", Resources: req("gpufleet.io/gpu-milli", "200")}},
			corev1.ResourceList{"gpufleet.io/gpu-milli": resource.MustParse("500")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("ns", "p")
			p.Spec.Containers, p.Spec.InitContainers = tc.containers, tc.init
			out, err := strip(p)
			if err != nil {
				t.Fatal(err)
			}
			var got corev1.ResourceList
			if cs := out.(*corev1.Pod).Spec.Containers; len(cs) > 0 {
				got = cs[0].Resources.Requests
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("GPU requests (-want +got):\n%s", diff)
			}
		})
	}
}

// The label counts that pick a selector's narrowest requirement follow
// pods as they come, change labels and go.
func TestLabelCountsFollowPods(t *testing.T) {
	var objs []runtime.Object
	for i := range 10 {
		objs = append(objs, pod("a", fmt.Sprintf("p%d", i), withLabels("role", "scale", "group", fmt.Sprintf("g%d", i%2))))
	}
	client := fake.NewClientset(objs...)
	c := startCache(t, client)
	counts := func() [3]int {
		return [3]int{c.labels.count("a/role=scale"), c.labels.count("a/group=g0"), c.labels.count("a/group=g1")}
	}
	poll(t, "counts after the first list", func() bool { return counts() == [3]int{10, 5, 5} })
	ctx := context.Background()
	p, err := client.CoreV1().Pods("a").Get(ctx, "p0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["group"] = "g1"
	if _, err := client.CoreV1().Pods("a").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "counts after a relabel", func() bool { return counts() == [3]int{10, 4, 6} })
	if err := client.CoreV1().Pods("a").Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "counts after a delete", func() bool { return counts() == [3]int{9, 4, 5} })
	sel, _ := labels.Parse("role=scale,group=g0")
	if got := len(c.Pods("a", sel)); got != 4 {
		t.Errorf("Pods(role=scale,group=g0) = %d pods, want 4", got)
	}
}
