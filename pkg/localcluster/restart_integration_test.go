package localcluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// A crashed etcd or kube-apiserver comes back on the same addresses with
// the same data: clients made before the crash work again, and nothing
// written before it is lost.
func TestIntegrationCrashRestart(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	ctx := t.Context()
	put := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"k": name}}
		// Poll: right after a restart the apiserver may still be
		// reconnecting to etcd.
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("creating ConfigMap %s: %v\n%s", name, err, c.Logs(20))
		}
	}
	has := func(names ...string) {
		t.Helper()
		for _, n := range names {
			got, err := client.CoreV1().ConfigMaps("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil || got.Data["k"] != n {
				t.Fatalf("ConfigMap %s after the restarts: %v, %v", n, got, err)
			}
		}
	}
	put("before")
	pids := len(c.PIDs())
	for i, name := range []string{localcluster.Etcd, localcluster.KubeAPIServer} {
		down, err := c.CrashRestart(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s crashed and was ready again after %v", name, down.Round(time.Millisecond))
		put("after-" + name)
		has("before", "after-"+name)
		if got := len(c.PIDs()); got != pids+i+1 {
			t.Errorf("%d child PIDs recorded after restarting %s, want %d (the new process counts)", got, name, pids+i+1)
		}
	}
	if _, err := c.CrashRestart(ctx, localcluster.KubeControllerManager); err == nil || !strings.Contains(err.Error(), "not etcd or kube-apiserver") {
		t.Errorf("CrashRestart(%s) = %v, want a refusal", localcluster.KubeControllerManager, err)
	}
}
