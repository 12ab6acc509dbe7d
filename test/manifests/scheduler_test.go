package manifests_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	schedscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	schedvalidation "k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedmetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"github.com/gpufleet/gpufleet/apis/config"
	_ "github.com/gpufleet/gpufleet/apis/config/scheme" // GPUPackArgs in pluginConfig
	"github.com/gpufleet/gpufleet/apis/config/validation"
	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

const (
	schedulerConfigKey  = "scheduler-config.yaml"
	schedulerConfigPath = "/etc/gpufleet/" + schedulerConfigKey
)

// decodeSchedulerConfig decodes a KubeSchedulerConfiguration as
// kube-scheduler does: strictly (unknown or duplicate fields are errors),
// converted and defaulted, GPUPack's args included.
func decodeSchedulerConfig(t *testing.T, data string) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	obj, _, err := schedscheme.Codecs.UniversalDecoder().Decode([]byte(data), nil, nil)
	if err != nil {
		t.Fatalf("decoding the scheduler configuration: %v", err)
	}
	cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
	if !ok {
		t.Fatalf("the scheduler configuration decodes to %T", obj)
	}
	return cfg
}

func TestSchedulerConfig(t *testing.T) {
	e := newEnv(t)
	base := buildOne(t, build(t, e), "base")

	// The ConfigMap the Deployment mounts at /etc/gpufleet.
	ws, err := workloads(base.objs)
	if err != nil {
		t.Fatal(err)
	}
	var cmName string
	for _, w := range ws {
		if short(w.obj) != "Deployment gpufleet-system/gpufleet-scheduler" {
			continue
		}
		c := w.tmpl.Spec.Containers[0]
		if !slices.Contains(c.Args, "--config="+schedulerConfigPath) {
			t.Errorf("scheduler args %v lack --config=%s", c.Args, schedulerConfigPath)
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath != "/etc/gpufleet" {
				continue
			}
			for _, v := range w.tmpl.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					cmName = v.ConfigMap.Name
				}
			}
		}
	}
	if cmName == "" {
		t.Fatal("the scheduler Deployment mounts no ConfigMap at /etc/gpufleet")
	}
	var data string
	for _, u := range base.objs {
		if u.GetKind() == "ConfigMap" && u.GetNamespace() == "gpufleet-system" && u.GetName() == cmName {
			data, _, _ = unstructured.NestedString(u.Object, "data", schedulerConfigKey)
		}
	}
	if data == "" {
		t.Fatalf("ConfigMap gpufleet-system/%s has no %s", cmName, schedulerConfigKey)
	}

	cfg := decodeSchedulerConfig(t, data)
	if err := schedvalidation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		t.Errorf("kube-scheduler rejects the configuration: %v", err)
	}
	le := cfg.LeaderElection
	if !le.LeaderElect || le.ResourceName != "gpufleet-scheduler" || le.ResourceNamespace != "gpufleet-system" || le.ResourceLock != "leases" {
		t.Errorf("leader election: leaderElect=%t lock=%s %s/%s, want true and leases gpufleet-system/gpufleet-scheduler (the Role in scheduler/rbac.yaml)",
			le.LeaderElect, le.ResourceLock, le.ResourceNamespace, le.ResourceName)
	}
	if cfg.ClientConnection.Kubeconfig != "" {
		t.Errorf("clientConnection.kubeconfig = %q, want empty (in-cluster)", cfg.ClientConnection.Kubeconfig)
	}
	if len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName != schedtest.SchedulerName {
		t.Fatalf("want one profile %q, got %d", schedtest.SchedulerName, len(cfg.Profiles))
	}
	for _, pc := range cfg.Profiles[0].PluginConfig {
		if pc.Name != gpupack.Name {
			continue
		}
		args, ok := pc.Args.(*config.GPUPackArgs)
		if !ok {
			t.Fatalf("GPUPack args decode to %T", pc.Args)
		}
		if errs := validation.ValidateGPUPackArgs(field.NewPath("pluginConfig", "args"), args); len(errs) > 0 {
			t.Errorf("GPUPack args: %v", errs.ToAggregate())
		}
	}

	// The profile is the one gpufleet recommends, after defaulting.
	want := decodeSchedulerConfig(t, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n"+
		schedtest.GPUPackProfile(schedtest.SchedulerName, "GPUFleet"))
	if diff := cmp.Diff(want.Profiles, cfg.Profiles); diff != "" {
		t.Errorf("profile differs from schedtest.GPUPackProfile (-recommended +manifest):\n%s", diff)
	}
	if enabled := cfg.Profiles[0].Plugins.Bind.Enabled; len(enabled) == 0 || enabled[0].Name != gpupack.Name {
		t.Errorf("bind plugins %v: GPUPack must bind first", enabled)
	}

	// The scheduler framework builds the profile with kube-scheduler's
	// plugins and GPUPack: every plugin name resolves, GPUPack accepts its
	// args.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	registry := plugins.NewInTreeRegistry()
	if err := registry.Register(gpupack.Name, gpupack.New); err != nil {
		t.Fatal(err)
	}
	schedmetrics.Register()
	client := fake.NewClientset()
	if _, err := frameworkruntime.NewFramework(ctx, registry, &cfg.Profiles[0],
		frameworkruntime.WithSnapshotSharedLister(cache.NewSnapshot(nil, nil)),
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(client, 0)),
	); err != nil {
		t.Errorf("building the scheduler framework from the profile: %v", err)
	}
}

// TestSchedulerConfigStrict makes sure the decoding above is strict, so a
// misspelt field in the ConfigMap fails TestSchedulerConfig.
func TestSchedulerConfigStrict(t *testing.T) {
	for name, cfg := range map[string]string{
		"kube-scheduler field": "leaderElection:\n  leaderElekt: true\n",
		"GPUPack arg":          "profiles:\n- schedulerName: x\n  pluginConfig:\n  - name: GPUPack\n    args:\n      stratgey: FGD\n",
	} {
		_, _, err := schedscheme.Codecs.UniversalDecoder().Decode([]byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"+cfg), nil, nil)
		if err == nil {
			t.Errorf("%s: a misspelt field decodes without error", name)
		}
	}
}
