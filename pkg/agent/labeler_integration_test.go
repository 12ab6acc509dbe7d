package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

// The agent labels its node with nothing but get and patch on nodes, only
// when something differs, and puts back what someone removed.
func TestIntegrationNodeLabeler(t *testing.T) {
	c, admin := clustertest.Start(t, localcluster.Options{})
	ctx := t.Context()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dgx-0", Labels: map[string]string{"keep": "me"}}}
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const user = "system:serviceaccount:gpufleet-system:gpu-agent"
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "gpufleet-gpu-agent"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "patch"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "gpufleet-gpu-agent"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: user}},
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	agentClient, err := NewKubeClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The agent cannot do more than that.
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("the agent's identity may list nodes: the RBAC under test is wider than get/patch")
	}

	inv := dgx1Inventory(t)
	l := NewNodeLabeler(agentClient, "dgx-0", inv)
	changed, err := l.Sync(ctx)
	if err != nil || !changed {
		t.Fatalf("first Sync: changed=%v, %v", changed, err)
	}
	got, err := admin.CoreV1().Nodes().Get(ctx, "dgx-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range inv.Labels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if got.Labels["keep"] != "me" {
		t.Error("the labeller removed a label it does not own")
	}
	if got.Annotations[names.AnnotationGPUTopology] != inv.Annotations[names.AnnotationGPUTopology] {
		t.Errorf("topology annotation %q", got.Annotations[names.AnnotationGPUTopology])
	}

	// Nothing differs: no write.
	changed, err = l.Sync(ctx)
	if err != nil || changed {
		t.Fatalf("second Sync: changed=%v, %v", changed, err)
	}
	again, _ := admin.CoreV1().Nodes().Get(ctx, "dgx-0", metav1.GetOptions{})
	if again.ResourceVersion != got.ResourceVersion {
		t.Errorf("a Sync with nothing to change wrote the node (resourceVersion %s -> %s)", got.ResourceVersion, again.ResourceVersion)
	}

	// Someone removes a label: the next Sync puts it back.
	delete(again.Labels, names.LabelGPUCount)
	if _, err := admin.CoreV1().Nodes().Update(ctx, again, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Sync(ctx); err != nil || !changed {
		t.Fatalf("Sync after a removed label: changed=%v, %v", changed, err)
	}
	final, _ := admin.CoreV1().Nodes().Get(ctx, "dgx-0", metav1.GetOptions{})
	if final.Labels[names.LabelGPUCount] != "8" {
		t.Errorf("gpu.count after restore: %q", final.Labels[names.LabelGPUCount])
	}

	// A node that does not exist is a clear error.
	if _, err := NewNodeLabeler(agentClient, "nope", inv).Sync(ctx); err == nil {
		t.Error("Sync of a missing node succeeded")
	}
}
