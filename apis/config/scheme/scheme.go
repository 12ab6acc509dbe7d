// Package scheme registers gpufleet's plugin args with kube-scheduler's
// config scheme; import it (for its side effect) wherever a
// KubeSchedulerConfiguration naming gpufleet plugins is decoded.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	schedscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"

	"github.com/gpufleet/gpufleet/apis/config"
	configv1 "github.com/gpufleet/gpufleet/apis/config/v1"
)

func init() {
	AddToScheme(schedscheme.Scheme)
}

// AddToScheme adds the internal and v1 plugin args to s.
func AddToScheme(s *runtime.Scheme) {
	utilruntime.Must(config.AddToScheme(s))
	utilruntime.Must(configv1.AddToScheme(s))
}
