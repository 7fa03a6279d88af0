import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  formatDefault,
  type JsonSchema,
  loadSchema,
  readmePath,
  tableCells,
  valueDocs,
} from './support/values-docs.ts';

/**
 * Schema nodes deliberately open: pass-through Kubernetes structures, whose fields are checked strictly
 * against the Kubernetes schema once rendered (see kubernetes-schema.test.ts).
 */
const passThroughObjects = [
  /\.affinity\.(nodeAffinity|podAffinity|podAntiAffinity)$/,
  /^networkPolicy\.extraEgress\[\]\.(to|ports)\[\]$/,
];

interface SchemaNode {
  path: string;
  schema: JsonSchema;
}

function schemaNodes(schema: JsonSchema, path = ''): SchemaNode[] {
  const nodes: SchemaNode[] = [{ path, schema }];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    nodes.push(...schemaNodes(child, path ? `${path}.${key}` : key));
  }
  if (schema.items) nodes.push(...schemaNodes(schema.items, `${path}[]`));
  if (typeof schema.additionalProperties === 'object') {
    nodes.push(...schemaNodes(schema.additionalProperties, `${path}.*`));
  }
  return nodes;
}

describe('values.yaml', () => {
  const docs = valueDocs();

  test('when values.yaml is read, then every value has a "# --" description', () => {
    const undocumented = docs.filter((doc) => !doc.description).map((doc) => doc.path);
    assert.deepEqual(undocumented, []);
  });

  test('when values.yaml is read, then every value has a typed schema entry', () => {
    const untyped = docs.filter((doc) => !doc.schema?.type).map((doc) => doc.path);
    assert.deepEqual(untyped, []);
  });
});

describe('values.schema.json', () => {
  const schema = loadSchema();
  const nodes = schemaNodes(schema);

  test('when the schema is read, then every object with properties rejects unknown keys', () => {
    const open = nodes
      .filter(({ schema: node }) => node.properties && node.additionalProperties !== false)
      .map(({ path }) => path || '(root)');
    assert.deepEqual(open, []);
  });

  test('when the schema is read, then every object without properties is a typed map or a known pass-through', () => {
    const untyped = nodes
      .filter(({ schema: node }) => node.type === 'object' && !node.properties)
      .filter(({ schema: node }) => typeof node.additionalProperties !== 'object')
      .map(({ path }) => path)
      .filter((path) => !passThroughObjects.some((pattern) => pattern.test(path)));
    assert.deepEqual(untyped, []);
  });

  test('when the schema is read, then every property it defines exists in values.yaml', () => {
    const documented = new Set(valueDocs().map((doc) => doc.path));
    const leaves = nodes
      .filter(({ path }) => path && !path.includes('[]') && !path.includes('*'))
      .filter(({ path }) => !passThroughObjects.some((pattern) => pattern.test(path)))
      .filter(({ path }) => !/\.affinity\./.test(path))
      .filter(({ schema: node }) => !node.properties)
      .map(({ path }) => path);
    assert.deepEqual(
      leaves.filter((path) => !documented.has(path)),
      [],
    );
  });
});

describe('chart README', () => {
  const readme = readFileSync(readmePath, 'utf8');

  test('when the README is read, then it lists every value of values.yaml with its default', () => {
    const rows = readme
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map(tableCells);
    const missing = valueDocs()
      .filter(
        (doc) =>
          !rows.some(
            (cells) => cells[0] === `\`${doc.path}\`` && cells.includes(formatDefault(doc.defaultValue)),
          ),
      )
      .map((doc) => `${doc.path} = ${JSON.stringify(doc.defaultValue)}`);
    assert.deepEqual(missing, []);
  });
});
