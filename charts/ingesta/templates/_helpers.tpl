{{/* Names ---------------------------------------------------------------------------------- */}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "ingesta.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: the release name, plus the chart name unless the release already has it. */}}
{{- define "ingesta.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's resources: (dict "root" $ "component" "api") -> <fullname>-api. */}}
{{- define "ingesta.componentName" -}}
{{- printf "%s-%s" (include "ingesta.fullname" .root | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------------- */}}

{{- define "ingesta.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels selecting every pod of the release (default-deny NetworkPolicy). */}}
{{- define "ingesta.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ingesta.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels selecting one component's pods: (dict "root" $ "component" "api"). */}}
{{- define "ingesta.selectorLabels" -}}
{{ include "ingesta.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every resource of a component: (dict "root" $ "component" "api"). */}}
{{- define "ingesta.labels" -}}
helm.sh/chart: {{ include "ingesta.chart" .root }}
{{ include "ingesta.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ingesta.imageTag" .root | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: ingesta
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Marks the Services of admin ports, which the ServiceMonitor scrapes. */}}
{{- define "ingesta.adminServiceLabel" -}}
ingesta.io/admin: "true"
{{- end }}

{{/* Image ----------------------------------------------------------------------------------- */}}

{{/* The image tag: image.tag or the chart's appVersion; never empty, never `latest`. */}}
{{- define "ingesta.imageTag" -}}
{{- $tag := toString (default .Chart.AppVersion .Values.image.tag) }}
{{- if or (eq $tag "") (eq $tag "latest") }}
{{- fail (printf "image.tag %q is not allowed: deploy an immutable tag (and optionally image.digest)" $tag) }}
{{- end }}
{{- $tag }}
{{- end }}

{{/* repository:tag, or repository:tag@digest when a digest is given. */}}
{{- define "ingesta.image" -}}
{{- $image := printf "%s:%s" .Values.image.repository (include "ingesta.imageTag" .) }}
{{- if .Values.image.digest }}
{{- $image = printf "%s@%s" $image .Values.image.digest }}
{{- end }}
{{- $image }}
{{- end }}

{{/* Runtime --------------------------------------------------------------------------------- */}}

{{/*
Memory quantity in MiB (floored): accepts plain bytes and the suffixes Ki Mi Gi Ti, k M G T, e.g. "512Mi", "1Gi", "0.5Gi".
*/}}
{{- define "ingesta.memoryMiB" -}}
{{- $quantity := toString . }}
{{- $units := list (list "Ki" 1024.0) (list "Mi" 1048576.0) (list "Gi" 1073741824.0) (list "Ti" 1099511627776.0) (list "k" 1000.0) (list "M" 1000000.0) (list "G" 1000000000.0) (list "T" 1000000000000.0) }}
{{- $bytes := -1.0 }}
{{- range $units }}
{{- if and (lt $bytes 0.0) (hasSuffix (index . 0) $quantity) }}
{{- $bytes = mulf (float64 (trimSuffix (index . 0) $quantity)) (index . 1) }}
{{- end }}
{{- end }}
{{- if lt $bytes 0.0 }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?$" $quantity) }}
{{- fail (printf "memory quantity %q is not understood: use e.g. 512Mi or 1Gi" $quantity) }}
{{- end }}
{{- $bytes = float64 $quantity }}
{{- end }}
{{- divf $bytes 1048576.0 | floor | int }}
{{- end }}

{{/*
NODE_OPTIONS sizing the V8 heap from the container memory limit, leaving the rest for buffers,
native memory and the young generation: (dict "root" $ "resources" .Values.api.resources).
*/}}
{{- define "ingesta.nodeOptions" -}}
{{- $limit := dig "limits" "memory" "" .resources }}
{{- if not $limit }}
{{- fail "resources.limits.memory is required: the V8 heap (--max-old-space-size) is sized from it" }}
{{- end }}
{{- $limitMiB := include "ingesta.memoryMiB" $limit | int }}
{{- $heapMiB := div (mul $limitMiB (int .root.Values.heapPercentOfMemoryLimit)) 100 }}
{{- if lt $heapMiB 64 }}
{{- fail (printf "memory limit %s leaves a %d MiB heap: give the container at least 128Mi" $limit $heapMiB) }}
{{- end }}
{{- printf "--max-old-space-size=%d" $heapMiB }}
{{- end }}

{{/* The grace period a component needs: preStop sleep + shutdown timeout + 5 s for exit and telemetry flush. */}}
{{- define "ingesta.minimumGracePeriodSeconds" -}}
{{- $timeoutSeconds := div (add .timeoutMs 999) 1000 }}
{{- add .preStopSleepSeconds $timeoutSeconds 5 }}
{{- end }}

{{/* Pod spec pieces ------------------------------------------------------------------------- */}}

{{/* Pod security context meeting the Pod Security Standard "restricted". */}}
{{- define "ingesta.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context meeting the Pod Security Standard "restricted". */}}
{{- define "ingesta.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* DATABASE_URL from the existing Secret, never inline. */}}
{{- define "ingesta.databaseUrlEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret.name }}
      key: {{ .Values.database.existingSecret.key }}
{{- end }}

{{/* DATABASE_URL of the jobs that change the schema or roles: the migration role's URL. */}}
{{- define "ingesta.migrationDatabaseUrlEnv" -}}
{{- $secret := .Values.database.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret.name }}
      key: {{ $secret.migrationKey | default $secret.key }}
{{- end }}

{{/* Probes on the admin port: (dict "root" $ "port" "admin"). */}}
{{- define "ingesta.probes" -}}
{{- $probes := .root.Values.probes -}}
startupProbe:
  httpGet:
    path: /livez
    port: {{ .port }}
  periodSeconds: {{ $probes.startup.periodSeconds }}
  failureThreshold: {{ $probes.startup.failureThreshold }}
  timeoutSeconds: {{ $probes.startup.timeoutSeconds }}
livenessProbe:
  httpGet:
    path: /livez
    port: {{ .port }}
  periodSeconds: {{ $probes.liveness.periodSeconds }}
  failureThreshold: {{ $probes.liveness.failureThreshold }}
  timeoutSeconds: {{ $probes.liveness.timeoutSeconds }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  periodSeconds: {{ $probes.readiness.periodSeconds }}
  failureThreshold: {{ $probes.readiness.failureThreshold }}
  timeoutSeconds: {{ $probes.readiness.timeoutSeconds }}
{{- end }}

{{/*
Zone and node spread for a component: (dict "root" $ "component" "api" "spread" .Values.api.topologySpread).
matchLabelKeys keeps the old and new ReplicaSets of a rollout from skewing each other.
*/}}
{{- define "ingesta.topologySpreadConstraints" -}}
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- topologyKey: {{ . }}
  maxSkew: {{ $.spread.maxSkew }}
  whenUnsatisfiable: {{ $.spread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "ingesta.selectorLabels" $ | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}

{{/* OpenTelemetry settings shared by both processes: (dict "root" $ "component" "api"). */}}
{{- define "ingesta.otelEnv" -}}
{{- $telemetry := .root.Values.telemetry -}}
OTEL_SERVICE_NAME: {{ printf "ingesta-%s" .component | quote }}
{{- if $telemetry.otlpEndpoint }}
OTEL_TRACES_EXPORTER: otlp
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $telemetry.otlpEndpoint | quote }}
OTEL_TRACES_SAMPLER: parentbased_traceidratio
OTEL_TRACES_SAMPLER_ARG: {{ $telemetry.sampleRatio | toString | quote }}
{{- else }}
OTEL_TRACES_EXPORTER: none
{{- end }}
{{- with $telemetry.resourceAttributes }}
{{- $pairs := list }}
{{- range $key, $value := . }}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) }}
{{- end }}
OTEL_RESOURCE_ATTRIBUTES: {{ join "," $pairs | quote }}
{{- end }}
{{- end }}

{{/* Capabilities ---------------------------------------------------------------------------- */}}

{{/* "true" when KEDA's ScaledObject is used for the consumer (autoscaling on, KEDA wanted and installed or forced). */}}
{{- define "ingesta.consumer.useKeda" -}}
{{- $autoscaling := .Values.consumer.autoscaling }}
{{- if and $autoscaling.enabled $autoscaling.keda.enabled (or $autoscaling.keda.force (.Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject")) }}true{{ end }}
{{- end }}

{{/* NetworkPolicy rules (built as data, rendered with toYaml) ----------------------------- */}}

{{/*
Egress rules: (dict "root" $ "aws" true). DNS and PostgreSQL always; with "aws", also AWS APIs
(SNS, SQS, STS for IRSA) and the JWKS host on 443, plus networkPolicy.extraEgress.
*/}}
{{- define "ingesta.egressRules" -}}
{{- $policy := .root.Values.networkPolicy }}
{{- $dnsPeer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $policy.dns.namespace)) }}
{{- with $policy.dns.podLabels }}
{{- $_ := set $dnsPeer "podSelector" (dict "matchLabels" .) }}
{{- end }}
{{- $rules := list (dict "to" (list $dnsPeer) "ports" (list (dict "protocol" "UDP" "port" 53) (dict "protocol" "TCP" "port" 53))) }}
{{- $databaseCidrs := $policy.databaseCidrs | default $policy.loadBalancerCidrs }}
{{- with $databaseCidrs }}
{{- $peers := list }}
{{- range . }}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}
{{- end }}
{{- $rules = append $rules (dict "to" $peers "ports" (list (dict "protocol" "TCP" "port" 5432))) }}
{{- end }}
{{- if .aws }}
{{- with $policy.awsEndpointCidrs }}
{{- $peers := list }}
{{- range . }}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}
{{- end }}
{{- $rules = append $rules (dict "to" $peers "ports" (list (dict "protocol" "TCP" "port" 443))) }}
{{- end }}
{{- $rules = concat $rules $policy.extraEgress }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/*
Ingress rules for the admin port (`port`, a number: the VPC CNI's policy agent has had bugs with
named ports) from the monitoring namespace (Prometheus).
*/}}
{{- define "ingesta.monitoringIngressRules" -}}
{{- $monitoring := .root.Values.networkPolicy.monitoring }}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $monitoring.namespace)) }}
{{- with $monitoring.podLabels }}
{{- $_ := set $peer "podSelector" (dict "matchLabels" .) }}
{{- end }}
{{- toYaml (list (dict "from" (list $peer) "ports" (list (dict "protocol" "TCP" "port" (int .port))))) }}
{{- end }}

{{/*
The window of event times both processes apply (ingest/time-window.ts): the retention of the maintenance
job is its lower bound, so all three read the same values.
*/}}
{{- define "ingesta.eventTimeEnv" -}}
EVENT_RETENTION_DAYS: {{ .Values.maintenance.retentionDays | int | quote }}
EVENT_TIME_PAST_MONTHS: {{ .Values.eventTime.pastMonths | int | quote }}
EVENT_TIME_MONTHS_AHEAD: {{ .Values.eventTime.monthsAhead | int | quote }}
{{- end }}
