import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { anchorsOf, linksOf, repoRoot } from './support/markdown.ts';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const linkTargets = (path: string) => linksOf(read(path)).map((link) => link.target);

describe('docs/architecture.md against the code', () => {
  const architecture = read('docs/architecture.md');

  test('when the migrations create tables, keys and indexes, then the data model names each of them', () => {
    const migrations = readdirSync(join(repoRoot, 'db', 'migrations')).filter((file) => file.endsWith('.ts'));
    const names = migrations.flatMap((file) =>
      [
        ...read(`db/migrations/${file}`).matchAll(
          /create table (?:if not exists )?(\w+)|create index (?:if not exists )?(\w+)|constraint (\w+) primary key/gi,
        ),
      ].map((match) => `${file}: ${match[1] ?? match[2] ?? match[3]}`),
    );
    assert.ok(names.length >= 8, names.join(', '));
    const missing = names.filter((entry) => !architecture.includes(`\`${entry.split(': ')[1]}\``));
    assert.deepEqual(missing, [], 'describe these in the "Data model" section of docs/architecture.md');
  });

  test('when a newcomer asks what happens to an event if the database is down, then the answer links its proof', () => {
    assert.ok(anchorsOf(architecture).has('what-happens-to-my-event-if-the-database-is-down'));
    const section = architecture.slice(
      architecture.indexOf('## What happens to my event if the database is down?'),
    );
    const answer = section.slice(0, section.indexOf('\n## ', 3));
    const targets = linksOf(answer).map((link) => link.target);
    for (const proof of [
      '../test/component/consumer.test.ts',
      '../consumer/consumer.ts',
      '../consumer/batch-handler.ts',
      '../api/server.ts',
    ]) {
      assert.ok(targets.includes(proof), `the answer does not link ${proof}`);
    }
  });

  test('when the architecture is drawn, then the system diagram names every moving part', () => {
    const system = architecture.slice(
      architecture.indexOf('```mermaid'),
      architecture.indexOf('```', architecture.indexOf('```mermaid') + 3),
    );
    for (const part of [
      'API Gateway',
      'VPC link',
      'NLB',
      'api pods',
      'consumer pods',
      'SNS',
      'SQS',
      'DLQ',
      'PostgreSQL',
      'Prometheus',
      'Grafana',
      'CloudWatch',
    ]) {
      assert.ok(system.includes(part), `the system diagram lacks ${part}`);
    }
  });
});

describe('maps and indexes', () => {
  test('when docs/ holds a document, then the docs map names it', () => {
    const map = read('docs/README.md');
    const targets = linkTargets('docs/README.md');
    const documents = readdirSync(join(repoRoot, 'docs')).filter(
      (file) => file.endsWith('.md') && file !== 'README.md',
    );
    // A link, or the path in code for a document not linked yet (the link test checks the links).
    for (const file of documents) {
      assert.ok(
        targets.includes(file) || map.includes(`\`docs/${file}\``),
        `docs/README.md does not name ${file}`,
      );
    }
    for (const index of ['runbooks/README.md', 'adr/README.md']) assert.ok(targets.includes(index), index);
  });

  test('when an ADR is written, then the index lists it and it has status, context, decision and consequences', () => {
    const targets = linkTargets('docs/adr/README.md');
    const records = readdirSync(join(repoRoot, 'docs', 'adr')).filter((file) => /^\d{4}-.+\.md$/.test(file));
    assert.ok(records.length >= 5);
    for (const file of records) {
      assert.ok(targets.includes(file), `docs/adr/README.md does not list ${file}`);
      const text = read(`docs/adr/${file}`);
      assert.match(
        text,
        new RegExp(`^# ${file.slice(0, 4)}\\. `),
        `${file}: title must start with "# ${file.slice(0, 4)}. "`,
      );
      assert.match(text, /\nStatus: \w+/, `${file}: no status`);
      for (const section of ['## Context', '## Decision', '## Consequences']) {
        assert.ok(text.includes(`\n${section}\n`), `${file} lacks ${section}`);
      }
    }
  });
});
