{{/* Names and labels shared by every object of the chart. */}}

{{- define "liteshift.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "liteshift.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "liteshift.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "liteshift.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "liteshift.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liteshift.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "liteshift.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "liteshift.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: liteshift
{{- end }}

{{- define "liteshift.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "liteshift.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference; the default tag is appVersion, the operator's own default sidecar image. */}}
{{- define "liteshift.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" when the PodMonitor is rendered: asked for, or "auto" and the Prometheus Operator API exists. */}}
{{- define "liteshift.podMonitorEnabled" -}}
{{- $enabled := toString .Values.monitoring.podMonitor.enabled }}
{{- if or (eq $enabled "true") (and (eq $enabled "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PodMonitor")) }}true{{ end }}
{{- end }}

{{/* Rules on cluster-scoped resources: kopf discovers the CRDs and the namespaces to serve. */}}
{{- define "liteshift.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{/* Rules on namespaced resources, wherever Datastores live. */}}
{{- define "liteshift.namespacedRules" -}}
# kopf: watch Datastores, record progress and finalizers in annotations, write status.
- apiGroups: ["liteshift.io"]
  resources: ["datastores"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["liteshift.io"]
  resources: ["datastores/status"]
  verbs: ["get", "patch"]
# kopf: the same for DatastoreBackups (on-demand backups).
- apiGroups: ["liteshift.io"]
  resources: ["datastorebackups"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["liteshift.io"]
  resources: ["datastorebackups/status"]
  verbs: ["get", "patch"]
# kopf: a Kubernetes Event for every notable step.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The operator's children: create-or-patch by fixed name (a 409 becomes a patch).
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch"]
# Secrets: the generated token Secret and the managed Postgres credentials.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "delete"]
# reclaimPolicy: Delete removes the volumes the StatefulSets' templates created.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "delete"]
{{- end }}
