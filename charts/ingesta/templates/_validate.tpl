{{/*
Cross-value checks the JSON schema cannot express. Included by the Deployments, so any render fails
with a clear message instead of producing pods that are killed mid-drain or redeliver work.
*/}}
{{- define "ingesta.validate" -}}
{{- $values := .Values }}
{{- range $component := list "api" "consumer" }}
{{- $shutdown := get (get $values $component) "shutdown" }}
{{- $minimum := include "ingesta.minimumGracePeriodSeconds" $shutdown | int }}
{{- if lt (int $shutdown.terminationGracePeriodSeconds) $minimum }}
{{- fail (printf "%s.shutdown.terminationGracePeriodSeconds is %d but must be at least %d: preStopSleepSeconds (%d) + timeoutMs (%d ms) + 5 s, or Kubernetes kills the process mid-drain" $component (int $shutdown.terminationGracePeriodSeconds) $minimum (int $shutdown.preStopSleepSeconds) (int $shutdown.timeoutMs)) }}
{{- end }}
{{- if ge (int $values.database.statementTimeoutMs) (int $shutdown.timeoutMs) }}
{{- fail (printf "database.statementTimeoutMs (%d) must be below %s.shutdown.timeoutMs (%d): a drain must outlive its slowest query" (int $values.database.statementTimeoutMs) $component (int $shutdown.timeoutMs)) }}
{{- end }}
{{- end }}
{{- if le (mul (int $values.consumer.visibilityTimeoutSec) 1000) (int $values.consumer.shutdown.timeoutMs) }}
{{- fail (printf "consumer.visibilityTimeoutSec (%d s) must exceed consumer.shutdown.timeoutMs (%d ms): messages still in flight during a drain would be delivered twice" (int $values.consumer.visibilityTimeoutSec) (int $values.consumer.shutdown.timeoutMs)) }}
{{- end }}
{{- if ge (mul (int $values.database.statementTimeoutMs) 3) (mul (int $values.consumer.visibilityTimeoutSec) 1000) }}
{{- fail (printf "database.statementTimeoutMs (%d) must be under a third of consumer.visibilityTimeoutSec (%d s): a batch must finish before its messages become visible again" (int $values.database.statementTimeoutMs) (int $values.consumer.visibilityTimeoutSec)) }}
{{- end }}
{{- if gt (int $values.consumer.pollers) (int $values.database.poolMax) }}
{{- fail (printf "consumer.pollers (%d) must not exceed database.poolMax (%d): each poller holds a connection per batch" (int $values.consumer.pollers) (int $values.database.poolMax)) }}
{{- end }}
{{- if eq (int $values.api.port) (int $values.api.adminPort) }}
{{- fail "api.port and api.adminPort must differ" }}
{{- end }}
{{- $auth := $values.auth }}
{{- $authParts := compact (list $auth.issuer $auth.audience $auth.jwksUrl) }}
{{- if and (not $auth.disabled) (gt (len $authParts) 0) (lt (len $authParts) 3) }}
{{- fail "auth.issuer, auth.audience and auth.jwksUrl must be set together (or auth.disabled: true)" }}
{{- end }}
{{- if and $values.database.externalSecret.enabled (not $values.database.externalSecret.remoteKey) }}
{{- fail "database.externalSecret.remoteKey is required when database.externalSecret.enabled is true" }}
{{- end }}
{{- end }}
