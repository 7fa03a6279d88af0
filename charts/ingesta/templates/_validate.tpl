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
{{- $binding := $values.api.targetGroupBinding }}
{{- if $binding.targetGroupArn }}
{{- $apiShutdown := $values.api.shutdown }}
{{- $drainSeconds := add $apiShutdown.preStopSleepSeconds (div (add $apiShutdown.timeoutMs 999) 1000) }}
{{- if lt (int $apiShutdown.preStopSleepSeconds) (int $binding.newConnectionsAfterDeregistrationSeconds) }}
{{- fail (printf "api.shutdown.preStopSleepSeconds (%d) must be at least api.targetGroupBinding.newConnectionsAfterDeregistrationSeconds (%d): the NLB still opens connections to a deregistering pod that long, and they would be refused" (int $apiShutdown.preStopSleepSeconds) (int $binding.newConnectionsAfterDeregistrationSeconds)) }}
{{- end }}
{{- if lt (int $binding.deregistrationDelaySeconds) (int $drainSeconds) }}
{{- fail (printf "api.targetGroupBinding.deregistrationDelaySeconds (%d) must be at least preStopSleepSeconds + timeoutMs (%d s): the target would leave the NLB while the pod still serves" (int $binding.deregistrationDelaySeconds) (int $drainSeconds)) }}
{{- end }}
{{- end }}
{{- $externalSecret := $values.database.externalSecret }}
{{- if and $externalSecret.enabled (not $externalSecret.force) (not (.Capabilities.APIVersions.Has "external-secrets.io/v1/ExternalSecret")) }}
{{- fail "database.externalSecret.enabled is true but the external-secrets.io/v1 ExternalSecret CRD is not installed: the migration Job would wait for a Secret nobody creates. Install the External Secrets Operator, set database.externalSecret.force (rendering without a cluster), or turn it off and create the Secret database.existingSecret names" }}
{{- end }}
{{- $databaseSecret := $values.database.existingSecret }}
{{- if and $values.database.appRole.enabled (or (not $databaseSecret.migrationKey) (eq $databaseSecret.migrationKey $databaseSecret.key)) }}
{{- fail "database.appRole.enabled needs database.existingSecret.migrationKey, a key other than existingSecret.key: migrations run as the owner role, the app as its own login" }}
{{- end }}
{{- if and $values.database.appRole.enabled (not $values.migrations.enabled) }}
{{- fail "database.appRole.enabled needs migrations.enabled: the database-roles hook runs after the migrations, with their ServiceAccount" }}
{{- end }}
{{- if and $values.database.externalSecret.enabled $databaseSecret.migrationKey (not $values.database.externalSecret.migrationRemoteProperty) }}
{{- fail "database.existingSecret.migrationKey is set but database.externalSecret.migrationRemoteProperty is not: the ExternalSecret would not create that key" }}
{{- end }}
{{- if and $values.database.externalSecret.enabled (not $values.database.externalSecret.remoteKey) }}
{{- fail "database.externalSecret.remoteKey is required when database.externalSecret.enabled is true" }}
{{- end }}
{{- end }}
