import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

/** A CloudEvent 1.0 in JSON structured mode, as accepted by the API and carried on the topic. */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  data?: unknown;
  /** Extension attributes. */
  [extension: string]: unknown;
}

/** Largest serialized event, in bytes: SNS and SQS take 256 KiB per message including attributes. */
export const maxEventBytes = 200 * 1024;

export const openApiPath = new URL('../api/openapi.yaml', import.meta.url);

/** The OpenAPI document is the single source of the event schema: the API validates with it, so does the consumer. */
export function loadOpenApiDocument(): Record<string, unknown> {
  return parse(readFileSync(openApiPath, 'utf8')) as Record<string, unknown>;
}

export interface SchemaProblem {
  path: string;
  message: string;
}

export type EventValidator = (value: unknown) => SchemaProblem[];

/** Compiles the OpenAPI `CloudEvent` schema into a validator returning every problem found. */
export function createEventValidator(document = loadOpenApiDocument()): EventValidator {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'ingesta', components: (document as { components: unknown }).components });
  const validate = ajv.getSchema('ingesta#/components/schemas/CloudEvent');
  if (!validate) throw new Error('CloudEvent schema missing from api/openapi.yaml');
  return (value) => {
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e: ErrorObject) => ({
      path: e.instancePath || '/',
      message: e.message ?? e.keyword,
    }));
  };
}
