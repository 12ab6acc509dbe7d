package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidate: every problem is reported at once.
func TestValidate(t *testing.T) {
	if err := NewOptions().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o := NewOptions()
	o.Rules, o.Listen, o.Policy = "", "nohost", "random"
	o.QueueScrapeInterval, o.MaxAttempts, o.RetryBudgetRatio = time.Millisecond, 0, 2
	o.UpstreamTimeout, o.MaxBodyBytes, o.ShutdownTimeout = 0, 10, 0
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--rules", "--listen", "--policy", "--queue-scrape-interval", "--max-attempts", "--retry-budget-ratio", "--upstream-timeout", "--max-body-bytes", "--shutdown-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// TestComplete: the rules file is read and decoded strictly; its errors
// name the file.
func TestComplete(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	rules := "apiVersion: router.gpufleet.io/v1alpha1\nkind: RoutingRules\nbackends: [{name: a, endpoints: [\"127.0.0.1:1\"]}]\nroutes: [{name: r, backends: [{backend: a}]}]\n"
	if err := os.WriteFile(good, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(rules+"extra: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	o := NewOptions()
	o.Rules = good
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if c.Router.Client != nil || len(c.Rules.Routes) != 1 {
		t.Errorf("outside a cluster without a kubeconfig: client %v, %d routes", c.Router.Client, len(c.Rules.Routes))
	}
	o.Rules = bad
	if _, err := o.Complete(); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Errorf("bad rules: %v, want the file and the unknown field named", err)
	}
}
