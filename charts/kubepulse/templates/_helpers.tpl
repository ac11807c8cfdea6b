{{/*
Names, labels and shared pieces of the kubepulse chart.
*/}}

{{/* The chart name. */}}
{{- define "kubepulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name prefix of every object: <release>-kubepulse, trimmed to fit DNS labels. */}}
{{- define "kubepulse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart-version for helm.sh/chart. */}}
{{- define "kubepulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; pass (dict "ctx" $ "component" "adapter"). */}}
{{- define "kubepulse.labels" -}}
helm.sh/chart: {{ include "kubepulse.chart" .ctx }}
{{ include "kubepulse.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kubepulse
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels a selector matches; pass (dict "ctx" $ "component" "adapter"). */}}
{{- define "kubepulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubepulse.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kubepulse.adapter.fullname" -}}
{{- printf "%s-adapter" (include "kubepulse.fullname" .) -}}
{{- end -}}

{{- define "kubepulse.exporter.fullname" -}}
{{- printf "%s-exporter" (include "kubepulse.fullname" .) -}}
{{- end -}}

{{- define "kubepulse.adapter.serviceAccountName" -}}
{{- if .Values.adapter.serviceAccount.create -}}
{{- default (include "kubepulse.adapter.fullname" .) .Values.adapter.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.adapter.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubepulse.exporter.serviceAccountName" -}}
{{- if .Values.exporter.serviceAccount.create -}}
{{- default (include "kubepulse.exporter.fullname" .) .Values.exporter.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.exporter.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (default appVersion). */}}
{{- define "kubepulse.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the adapter's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "kubepulse.adapter.tlsSecretName" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "kubepulse.adapter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The DNS names the serving certificate must carry (the aggregator dials <svc>.<ns>.svc). */}}
{{- define "kubepulse.adapter.dnsNames" -}}
{{- $service := include "kubepulse.adapter.fullname" . -}}
{{- $namespace := .Release.Namespace -}}
{{- list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.%s" $service $namespace .Values.tls.clusterDomain) | toJson -}}
{{- end -}}

{{/*
The generated CA and certificate, computed once per render and kept across upgrades:
an existing Secret (lookup) is reused, so the caBundle does not change on every upgrade.
Returns a JSON object {"crt", "key", "ca"} of base64 PEM.
*/}}
{{- define "kubepulse.adapter.generatedTLS" -}}
{{- $secretName := include "kubepulse.adapter.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- if and $existing $existing.data (index $existing.data "tls.crt") (index $existing.data "ca.crt") -}}
{{- dict "crt" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key") "ca" (index $existing.data "ca.crt") | toJson -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" (include "kubepulse.adapter.fullname" .)) (int .Values.tls.validityDays) -}}
{{- $dnsNames := include "kubepulse.adapter.dnsNames" . | fromJsonArray -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" (include "kubepulse.adapter.fullname" .) .Release.Namespace) nil $dnsNames (int .Values.tls.validityDays) $ca -}}
{{- dict "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) "ca" ($ca.Cert | b64enc) | toJson -}}
{{- end -}}
{{- end -}}

{{/*
How the certificate is provided: "secret" (user's), "cert-manager" or "generated".
*/}}
{{- define "kubepulse.adapter.tlsMode" -}}
{{- if .Values.tls.existingSecret -}}secret
{{- else if .Values.certManager.enabled -}}cert-manager
{{- else -}}generated
{{- end -}}
{{- end -}}

{{/*
The base64 caBundle of the APIServices for the "secret" mode: tls.caBundle (PEM or
base64), else the Secret's ca.crt read at install.
*/}}
{{- define "kubepulse.adapter.userCABundle" -}}
{{- $bundle := .Values.tls.caBundle -}}
{{- if $bundle -}}
{{- if contains "-----BEGIN" $bundle -}}{{ $bundle | b64enc }}{{- else -}}{{ $bundle | nospace }}{{- end -}}
{{- else -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.tls.existingSecret -}}
{{- if and $secret $secret.data (index $secret.data "ca.crt") -}}
{{- index $secret.data "ca.crt" -}}
{{- else -}}
{{- fail (printf "tls.existingSecret=%s: set tls.caBundle to the PEM CA that signed it (the Secret has no ca.crt, or it cannot be read while rendering)" .Values.tls.existingSecret) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The adapter's container arguments: every flag is a real `kubepulse-adapter serve` flag. */}}
{{- define "kubepulse.adapter.args" -}}
{{- $a := .Values.adapter -}}
- serve
- --config=/etc/kubepulse/config/adapter.yaml
- --bind-address=0.0.0.0
- --secure-port={{ $a.port }}
- --cert-dir=/var/run/kubepulse-adapter/certs
- --tls-cert-file=/var/run/kubepulse-adapter/tls/tls.crt
- --tls-private-key-file=/var/run/kubepulse-adapter/tls/tls.key
- --service-name={{ include "kubepulse.adapter.fullname" . }}
- --service-namespace={{ .Release.Namespace }}
- --cluster-domain={{ .Values.tls.clusterDomain }}
- --tls-min-version={{ .Values.tls.minVersion }}
- --source={{ $a.source }}
{{- if eq $a.source "prometheus" }}
- --prometheus-url={{ required "adapter.prometheus.url is required with adapter.source=prometheus" $a.prometheus.url }}
- --prometheus-timeout={{ $a.prometheus.timeout }}
- --prometheus-scrape-interval={{ $a.prometheus.scrapeInterval }}
{{- else }}
- --scrape-interval={{ $a.embedded.scrapeInterval }}
- --scrape-timeout={{ $a.embedded.scrapeTimeout }}
- --retention={{ $a.embedded.retention }}
- --exporter-selector=app.kubernetes.io/name={{ include "kubepulse.name" . }},app.kubernetes.io/instance={{ .Release.Name }},app.kubernetes.io/component=exporter
- {{ ternary "--discovery" "--no-discovery" $a.embedded.discovery }}
- {{ ternary "--scrape-annotated-pods" "--no-scrape-annotated-pods" $a.embedded.scrapeAnnotatedPods }}
{{- with $a.embedded.namespaces }}
- --discovery-namespaces={{ join "," . }}
{{- end }}
{{- range $a.embedded.staticTargets }}
- --static-target={{ . }}
{{- end }}
{{- with $a.embedded.keepMetrics }}
- --keep-metrics={{ . }}
{{- end }}
{{- with $a.embedded.dropMetrics }}
- --drop-metrics={{ . }}
{{- end }}
{{- if $a.checkpoint.enabled }}
- --checkpoint-path=/var/lib/kubepulse-adapter/store.checkpoint
- --checkpoint-interval={{ $a.checkpoint.interval }}
{{- else }}
- --checkpoint-path=
{{- end }}
{{- end }}
- --staleness={{ $a.staleness }}
- {{ ternary "--analysis-api" "--no-analysis-api" $a.analysis }}
{{- if .Values.apiServices.resourceMetricsV1beta1 }}
- --resource-metrics-api
{{- end }}
{{- if $a.tolerateAuthenticationLookupFailure }}
- --authentication-tolerate-lookup-failure
{{- end }}
{{- with $a.advertiseStatistics }}
- --advertise-statistics={{ join "," . }}
{{- end }}
- --log-level={{ $a.logLevel }}
- --log-format={{ $a.logFormat }}
{{- range $a.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}

{{/* The exporter's container arguments: every flag is a real `kubepulse-exporter serve` flag. */}}
{{- define "kubepulse.exporter.args" -}}
{{- $e := .Values.exporter -}}
- serve
- --listen-address=0.0.0.0:{{ $e.port }}
- --proc-root={{ $e.procRoot }}
- --cgroup-root={{ $e.cgroupRoot }}
- --mode={{ $e.mode }}
- --sample-interval={{ $e.sampleInterval }}
- --top-host-processes={{ $e.topHostProcesses }}
- --max-series={{ $e.maxSeries }}
- --api-qps={{ $e.apiQps }}
- --log-level={{ $e.logLevel }}
- --log-format={{ $e.logFormat }}
{{- range $e.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}

{{/* The container securityContext both roles share: no privilege, read-only root. */}}
{{- define "kubepulse.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- with .add }}
  add:
{{ toYaml . | indent 4 }}
{{- end }}
{{- end -}}
