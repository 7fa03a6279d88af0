import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseTimestamp } from '../ingest/timestamp.ts';

export const openApiPath = new URL('./openapi.yaml', import.meta.url);

/** The OpenAPI document: served at /openapi.json, rendered at /docs, enforced on requests. */
export function loadOpenApiDocument(): Record<string, unknown> {
  return parse(readFileSync(openApiPath, 'utf8')) as Record<string, unknown>;
}

type Operation = { requestBody?: { content?: Record<string, { schema?: unknown }> } };

/**
 * The document express-openapi-validator enforces: the published one, except that the events a
 * POST carries are left to the acceptance contract (ingest/contract.ts), which holds the same rules
 * with the reasons a producer needs; the validator checks everything else (paths, methods, query
 * parameters, content types). Two validators of one body would drift; one cannot.
 */
export function validatorDocument(document: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(document);
  const post = (copy.paths as Record<string, Record<string, Operation>>)['/v1/events']?.post;
  for (const media of Object.values(post?.requestBody?.content ?? {})) media.schema = { type: 'string' };
  return copy;
}

/** Formats the validator checks with the contract's own parsers, not ajv-formats' approximations. */
export const validatorFormats = {
  'date-time': (value: string) => parseTimestamp(value).ok,
};
