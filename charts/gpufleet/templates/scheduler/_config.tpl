{{/*
gpufleet-scheduler's KubeSchedulerConfiguration: the profile gpufleet
recommends (manifests/base/scheduler/scheduler-config.yaml says why each
line is there; test/manifests checks the two are the same).
*/}}
{{- define "gpufleet.schedulerConfig" -}}
{{- $v := .Values.scheduler -}}
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  resourceLock: leases
  resourceNamespace: {{ .Release.Namespace }}
  resourceName: gpufleet-scheduler
profiles:
- schedulerName: {{ $v.schedulerName }}
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
      strategy: {{ $v.strategy }}
      workloadWindow: {{ $v.workloadWindow }}
      typicalPodCoveragePercent: {{ $v.typicalPodCoveragePercent }}
  - name: PodTopologySpread
    args:
      defaultingType: List
{{- end }}
