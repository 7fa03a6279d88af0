import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseTimestamp } from '../ingest/timestamp.ts';

export const openApiPath = new URL('./openapi.yaml', import.meta.url);

/** The OpenAPI document: served at /openapi.json, rendered at /docs, enforced on requests. */
export function loadOpenApiDocument(): Record<string, unknown> {
  return parse(readFileSync(openApiPath, 'utf8')) as Record<string, unknown>;
}

type Operation = {
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  parameters?: { in?: string; schema?: { format?: string } }[];
};

/**
 * The document express-openapi-validator enforces: the published one, except that the events a
 * POST carries are left to the acceptance contract (ingest/contract.ts), which holds the same rules
 * with the reasons a producer needs; the validator checks everything else (paths, methods, query
 * parameters, content types). Two validators of one body would drift; one cannot.
 */
export function validatorDocument(document: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(document);
  const paths = copy.paths as Record<string, Record<string, Operation>>;
  const post = paths['/v1/events']?.post;
  for (const media of Object.values(post?.requestBody?.content ?? {})) media.schema = {};
  // Query times likewise: the route parses them with the contract's parser, whose reasons say what
  // to fix ("day 30 does not exist in February 2025"), where a format check says only "must match".
  for (const operation of Object.values(paths).flatMap((path) => Object.values(path))) {
    for (const parameter of operation.parameters ?? []) {
      if (parameter.in === 'query' && parameter.schema?.format === 'date-time')
        delete parameter.schema.format;
    }
  }
  return copy;
}

/** Formats the validator checks with the contract's own parsers, not ajv-formats' approximations. */
export const validatorFormats = {
  'date-time': (value: string) => parseTimestamp(value).ok,
};
