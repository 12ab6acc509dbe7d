{{/*
Labels on every object: the kustomize base's app.kubernetes.io/part-of,
plus Helm's own (test/manifests names these three as the only labels the
chart adds to the kustomize build).
*/}}
{{- define "gpufleet.labels" -}}
app.kubernetes.io/part-of: gpufleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end }}

{{/*
A component's object labels: gpufleet.componentLabels (dict "ctx" $ "name" "gpu-agent" "component" "agent").
The component label is left out when empty (RBAC objects carry the name only).
*/}}
{{- define "gpufleet.componentLabels" -}}
app.kubernetes.io/name: {{ .name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{ include "gpufleet.labels" .ctx }}
{{- end }}

{{/*
Pod template labels: the selector label, the component and part-of (as
the kustomize base's labels transformer puts on templates). No Helm labels:
helm.sh/chart changes with every chart version and would roll every pod.
*/}}
{{- define "gpufleet.podLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: gpufleet
{{- end }}

{{/* An image reference from images.<key>: repository@digest, else repository:tag. */}}
{{- define "gpufleet.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end }}

{{/* The container's image and pull policy. */}}
{{- define "gpufleet.containerImage" -}}
image: {{ include "gpufleet.image" .image | quote }}
{{- with .ctx.Values.images.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{/* Pod-level scheduling and pull settings common to the three workloads. */}}
{{- define "gpufleet.podExtras" -}}
{{- with .ctx.Values.images.pullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The restricted-level security contexts of the adapter and the scheduler. */}}
{{- define "gpufleet.restrictedPodSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "gpufleet.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/* Preferred spreading of a Deployment's replicas over nodes. */}}
{{- define "gpufleet.spreadReplicas" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            app.kubernetes.io/name: {{ . }}
{{- end }}

{{/* A ServiceAccount subject in the release namespace. */}}
{{- define "gpufleet.saSubject" -}}
subjects:
- kind: ServiceAccount
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
{{- end }}
