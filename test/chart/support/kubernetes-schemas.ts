/**
 * Strict, offline validation of rendered objects against the Kubernetes OpenAPI schema (1.36, from the
 * pinned `kubernetes-models`) and the CRD schemas the chart targets (KEDA, Prometheus Operator, External
 * Secrets from `@kubernetes-models/*`; TargetGroupBinding from the AWS Load Balancer Controller CRD).
 *
 * Like `kubeconform -strict`, a field no schema defines is an error. The `kubernetes-models` packages
 * ship their OpenAPI schemas compiled into ajv validators, whose generated code reads every property a
 * schema defines (`data.replicas`, `data.selector`, …) and enumerates the keys of map-like objects.
 * Validating through a Proxy that records those reads therefore tells, for each object, which keys the
 * schema knows: a key that was present but never read is an unknown field (`spec.replicass`). Objects
 * whose schema defines no properties (free-form, preserve-unknown-fields) read none and stay open, the
 * same rule as adding `additionalProperties: false` wherever `properties` is defined.
 */
import { readFileSync } from 'node:fs';
import { ExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

/** The Kubernetes release whose OpenAPI schema `kubernetes-models` 5.x is generated from. */
export const schemaKubernetesVersion = '1.36';

type Validate = (object: unknown) => void;

/** A kubernetes-models class validates `this` with its compiled schema and throws on errors. */
const fromModel =
  (model: { prototype: { validate(): void } }): Validate =>
  (object) =>
    model.prototype.validate.call(object);

/** A plain JSON schema made strict: `additionalProperties: false` wherever `properties` is defined. */
export function strictJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictJsonSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const strict: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    strict[key] =
      key === 'properties' ? mapValues(value as object, strictJsonSchema) : strictJsonSchema(value);
  }
  if ('properties' in strict && !('additionalProperties' in strict)) strict.additionalProperties = false;
  return strict;
}

function mapValues(object: object, transform: (value: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, transform(value)]));
}

const ajv = new Ajv({ allErrors: true, strict: false });
function fromJsonSchemaFile(file: URL): Validate {
  const validate: ValidateFunction = ajv.compile(
    strictJsonSchema(JSON.parse(readFileSync(file, 'utf8'))) as AnySchema,
  );
  return (object) => {
    if (!validate(object)) {
      const errors = (validate.errors ?? []).map(
        (error) => `${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`,
      );
      throw new Error(errors.join('\n'));
    }
  };
}

const validators: Record<string, Validate> = {
  'v1/ConfigMap': fromModel(ConfigMap),
  'v1/Pod': fromModel(Pod),
  'v1/Secret': fromModel(Secret),
  'v1/Service': fromModel(Service),
  'v1/ServiceAccount': fromModel(ServiceAccount),
  'apps/v1/Deployment': fromModel(Deployment),
  'batch/v1/Job': fromModel(Job),
  'batch/v1/CronJob': fromModel(CronJob),
  'autoscaling/v2/HorizontalPodAutoscaler': fromModel(HorizontalPodAutoscaler),
  'policy/v1/PodDisruptionBudget': fromModel(PodDisruptionBudget),
  'networking.k8s.io/v1/NetworkPolicy': fromModel(NetworkPolicy),
  'keda.sh/v1alpha1/ScaledObject': fromModel(ScaledObject),
  'keda.sh/v1alpha1/TriggerAuthentication': fromModel(TriggerAuthentication),
  'monitoring.coreos.com/v1/ServiceMonitor': fromModel(ServiceMonitor),
  'monitoring.coreos.com/v1/PrometheusRule': fromModel(PrometheusRule),
  'external-secrets.io/v1/ExternalSecret': fromModel(ExternalSecret),
  'elbv2.k8s.aws/v1beta1/TargetGroupBinding': fromJsonSchemaFile(
    new URL('./schemas/targetgroupbinding-elbv2-v1beta1.json', import.meta.url),
  ),
};

interface Visit {
  path: string;
  value: object;
  read: Set<string>;
  enumerated: boolean;
}

/** Wraps `value` so that every property read and key enumeration by the validator is recorded. */
function track(value: object, path: string, visits: Visit[]): object {
  const visit: Visit = { path, value, read: new Set(), enumerated: false };
  visits.push(visit);
  const children = new Map<string, object>();
  return new Proxy(value, {
    get(target, key, receiver) {
      const child: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return child;
      visit.read.add(key);
      if (child === null || typeof child !== 'object') return child;
      let tracked = children.get(key);
      if (!tracked) {
        tracked = track(child, `${path}/${key}`, visits);
        children.set(key, tracked);
      }
      return tracked;
    },
    has(target, key) {
      if (typeof key === 'string') visit.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      visit.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

export interface ValidationProblem {
  object: string;
  message: string;
}

/** Validates one object; returns its problems (schema errors and unknown fields), empty when valid. */
export function validateStrict(object: {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  [field: string]: unknown;
}): ValidationProblem[] {
  const id = `${object.apiVersion}/${object.kind}`;
  const name = `${object.kind}/${object.metadata?.name ?? '?'}`;
  const validate = validators[id];
  if (!validate) return [{ object: name, message: `no schema known for ${id}` }];
  const problems: ValidationProblem[] = [];
  const visits: Visit[] = [];
  try {
    validate(track(object, '', visits));
  } catch (err) {
    problems.push({ object: name, message: err instanceof Error ? err.message : String(err) });
  }
  if (id === 'elbv2.k8s.aws/v1beta1/TargetGroupBinding') return problems; // strict through its JSON schema
  for (const visit of visits) {
    if (Array.isArray(visit.value) || visit.enumerated || visit.read.size === 0) continue;
    for (const key of Object.keys(visit.value)) {
      if (!visit.read.has(key)) {
        problems.push({ object: name, message: `${visit.path || '/'}: unknown field "${key}"` });
      }
    }
  }
  return problems;
}

export function knownKinds(): string[] {
  return Object.keys(validators);
}
