// Package schedconfig writes the configuration of gpufleet's scheduler
// (kube-scheduler with the GPUPack plugin): the recommended profile and a
// KubeSchedulerConfiguration file. It imports nothing of the scheduler, so
// that programs which only start bin/scheduler-plugin (the end-to-end test,
// `gpufleet demo`) do not link it; internal/schedtest runs the scheduler in
// process with the same configuration.
package schedconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SchedulerName is the profile name gpufleet's manifests use.
const SchedulerName = "gpufleet-scheduler"

// GPUPackProfile is the profile YAML gpufleet recommends (the manifests ship
// the same): GPUPack at every extension point with weight 10, and the
// default NodeResourcesFit and NodeResourcesBalancedAllocation scoring off,
// no cluster-default PodTopologySpread constraints (they spread a
// Deployment's replicas; a pod's own constraints still apply), GPUPack's
// Filter first (it turns away nodes with full GPUs from its cached ledger
// before NodeResourcesFit's costlier per-node check), GPUPack binding GPU
// pods (with their GPU indices, one API write).
func GPUPackProfile(schedulerName, strategy string) string {
	return fmt.Sprintf(`- schedulerName: %s
  plugins:
    multiPoint:
      enabled:
      - name: GPUPack
        weight: 10
    filter:
      enabled:
      - name: GPUPack
    bind:
      enabled:
      - name: GPUPack
    score:
      disabled:
      - name: NodeResourcesFit
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: GPUPack
    args:
      strategy: %s
  - name: PodTopologySpread
    args:
      defaultingType: List
`, schedulerName, strategy)
}

// MostAllocatedProfile is the stock kube-scheduler's way to bin-pack GPUs:
// NodeResourcesFit scoring MostAllocated on nvidia.com/gpu (and the
// gpufleet.io/gpu-milli share), without GPUPack.
func MostAllocatedProfile(schedulerName string) string {
	return fmt.Sprintf(`- schedulerName: %s
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: nvidia.com/gpu
          weight: 1
        - name: gpufleet.io/gpu-milli
          weight: 1
`, schedulerName)
}

// WriteConfig writes a KubeSchedulerConfiguration with the given profiles
// (YAML list items) for a scheduler reaching the API server through
// kubeconfig, and returns its path.
func WriteConfig(dir, kubeconfig string, leaderElect bool, profiles ...string) (string, error) {
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 5000
  burst: 10000
leaderElection:
  leaderElect: %t
  resourceNamespace: kube-system
  resourceName: gpufleet-scheduler
profiles:
%s`, kubeconfig, leaderElect, strings.Join(profiles, ""))
	path := filepath.Join(dir, "scheduler-config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}
