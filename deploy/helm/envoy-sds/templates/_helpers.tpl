{{/*
Names. With the release named "envoy-sds" every object is named as in deploy/ (envoy-sds,
envoy-sds-config, envoy-sds-read, ...); another release name becomes a prefix.
*/}}
{{- define "envoy-sds.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "envoy-sds" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-envoy-sds" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The selector: app.kubernetes.io/name as in deploy/, plus the instance for two releases. */}}
{{- define "envoy-sds.selectorLabels" -}}
app.kubernetes.io/name: envoy-sds
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "envoy-sds.labels" -}}
{{ include "envoy-sds.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "envoy-sds.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "envoy-sds.fullname" .) -}}
{{- end -}}

{{/* The Secret with the server's own serving certificate (tls.crt, tls.key). */}}
{{- define "envoy-sds.tlsSecretName" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "envoy-sds.fullname" .)) -}}
{{- end -}}

{{/* The DNS names gateways use to reach the server; the certificate must carry them. */}}
{{- define "envoy-sds.dnsNames" -}}
{{- $name := include "envoy-sds.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $name }}
- {{ $name }}.{{ $ns }}
- {{ $name }}.{{ $ns }}.svc
- {{ $name }}.{{ $ns }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* Cluster scope unless watch.namespaces lists some. */}}
{{- define "envoy-sds.clusterScope" -}}
{{- if empty .Values.watch.namespaces -}}true{{- end -}}
{{- end -}}
