package embedded

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/gpufleet/gpufleet/pkg/adapter/cluster"
	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/names"
)

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestDiscoveryFollowsPods(t *testing.T) {
	client := fake.NewClientset(
		testPod("ml", "web", scrapeOn()),
		testPod("ml", "bad", scrapeOn(names.AnnotationScrapePort, "abc")),
		testPod("kube-system", "agent-a", agent, onNode("node-a", "10.0.0.2")),
	)
	c, err := cluster.New(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The fake clientset does not replay objects created before the watch.
	poll(t, "the pod informer to watch", func() bool {
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == "pods" {
				return true
			}
		}
		return false
	})
	s, err := scrape.New()
	if err != nil {
		t.Fatal(err)
	}
	d := &Discovery{Cache: c, Scraper: s, AgentSelector: agentSelector, MinResync: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	isTarget := func(key string) bool { _, ok := s.Store().Status(key); return ok }

	poll(t, "the first targets", func() bool { return isTarget(PodKey("ml", "web")) && isTarget(NodeKey("node-a")) })
	if isTarget(PodKey("ml", "bad")) {
		t.Error("pod with a bad port annotation is a target")
	}

	pods := client.CoreV1().Pods("ml")
	if _, err := pods.Create(t.Context(), testPod("ml", "new", scrapeOn()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a new pod to become a target", func() bool { return isTarget(PodKey("ml", "new")) })

	if err := pods.Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a deleted pod to stop being a target", func() bool { return !isTarget(PodKey("ml", "web")) })

	// Fixing the annotation makes the pod a target.
	fixed := testPod("ml", "bad", scrapeOn(names.AnnotationScrapePort, "8080"))
	if _, err := pods.Update(t.Context(), fixed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a fixed pod to become a target", func() bool { return isTarget(PodKey("ml", "bad")) })
}
