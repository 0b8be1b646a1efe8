{{/* Names and labels shared by every template. */}}

{{- define "canary.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "canary.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "canary.labels" -}}
{{ include "canary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "canary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "canary.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "canary.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
What the controller calls in the namespaces it acts in, and nothing more: a ClusterRole in a
cluster-wide install, the same rules in a Role per watched namespace in a namespaced one.
tests/integration/e2e/test_rbac_matches_what_the_controller_called.py compares these rules with
the API server's audit log of an e2e run as this ServiceAccount.
*/}}
{{- define "canary.rules" -}}
# Releases and policies: listed and watched into the controller's cache; read singly only by
# the HTTP API and after a lost status-write race; the API's commands are annotations, and the
# first status write labels a Rollout with its target (patch); retention deletes old finished
# ones (--keep-finished); the HTTP API's undo creates a Rollout for a caller RBAC lets create
# one (create).
- apiGroups: [canary.dev]
  resources: [rollouts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [canary.dev]
  resources: [rolloutpolicies]
  verbs: [get, list, watch]
# The durable record of each release, replaced guarded by its resourceVersion.
- apiGroups: [canary.dev]
  resources: [rollouts/status]
  verbs: [update]
# Deployments listed and watched into the cache (trimmed); read singly before a write,
# dry-run-patched to build the canary template and patched on promotion; the -canary
# Deployment created, replaced on a new release, and scaled.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
# Services cached; the -stable and -canary Services beside the apex Service created, and
# replaced (read singly first) when its selector changes.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, update]
# HorizontalPodAutoscalers cached (the target's is only ever read); the canary's own created
# from it, replaced when its bounds change, deleted when the canary is scaled to zero.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, update, delete]
# The traffic split: cached, created once, weights patched.
- apiGroups: [gateway.networking.k8s.io, policy.linkerd.io]
  resources: [httproutes]
  verbs: [list, watch, create, patch]
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: [list, watch, create, patch]
# Events on Rollouts (kubectl describe rollout).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- with .Values.notifications.secretNames }}
# Notification URLs (urlFrom): only these Secrets, by name; never listed.
- apiGroups: [""]
  resources: [secrets]
  resourceNames: {{ toJson . }}
  verbs: [get]
{{- end }}
{{- end -}}
