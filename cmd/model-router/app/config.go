package app

import (
	"fmt"
	"os"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gpufleet/gpufleet/pkg/inference/router"
)

// Config is what Run needs, completed from Options.
type Config struct {
	Options   *Options
	Rules     *router.Rules
	RulesData []byte
	Router    router.Config
}

// Complete reads and decodes the rules and builds the API clients.
func (o *Options) Complete() (*Config, error) {
	data, err := os.ReadFile(o.Rules)
	if err != nil {
		return nil, fmt.Errorf("reading --rules: %w", err)
	}
	rules, err := router.Decode(data, o.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Rules, err)
	}
	scrape := o.QueueScrapeInterval
	if scrape == 0 {
		scrape = -1
	}
	c := &Config{Options: o, Rules: rules, RulesData: data, Router: router.Config{
		Policy: router.Policy(o.Policy), MaxAttempts: o.MaxAttempts, RetryBudgetRatio: o.RetryBudgetRatio,
		UpstreamTimeout: o.UpstreamTimeout, MaxBodyBytes: o.MaxBodyBytes, QueueScrapeInterval: scrape,
	}}
	if o.RetryBudgetRatio == 0 {
		c.Router.MaxAttempts = 1 // a zero budget: no retries
	}
	rc, err := restConfig(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if rc != nil {
		rc.QPS, rc.Burst = 20, 40
		if c.Router.Client, err = kubernetes.NewForConfig(rc); err != nil {
			return nil, err
		}
		if c.Router.Dynamic, err = dynamic.NewForConfig(rc); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// restConfig is the kubeconfig's, the in-cluster one, or nil outside a
// cluster without a kubeconfig.
func restConfig(kubeconfig string) (*rest.Config, error) {
	switch {
	case kubeconfig != "":
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
		return rc, nil
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		return rest.InClusterConfig()
	}
	return nil, nil
}
