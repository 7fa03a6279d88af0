import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { anchorsOf, brokenLinks, documentationFiles, linksOf, slugOf } from './support/markdown.ts';

describe('relative links in README.md and docs/', () => {
  const files = documentationFiles();

  test('when the documentation is listed, then README.md, the docs map and the runbooks are in it', () => {
    for (const file of ['README.md', 'docs/README.md', 'docs/architecture.md', 'docs/runbooks/README.md']) {
      assert.ok(files.includes(file), `${file} is missing`);
    }
  });

  test('when every relative link is followed, then its file exists and its anchor names a heading', () => {
    assert.deepEqual(brokenLinks(files), []);
  });
});

describe('the link checker itself', () => {
  const root = mkdtempSync(join(tmpdir(), 'ingesta-links-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('when headings repeat or carry code and punctuation, then anchors follow GitHub', () => {
    assert.equal(
      slugOf('What happens to my event if the database is down?'),
      'what-happens-to-my-event-if-the-database-is-down',
    );
    assert.equal(slugOf('`DATABASE_URL`'), 'database_url');
    assert.equal(
      slugOf('Consumer concurrency vs. RDS connections'),
      'consumer-concurrency-vs-rds-connections',
    );
    assert.equal(slugOf('[ADR 0001](adr/0001.md): SNS + SQS'), 'adr-0001-sns--sqs');
    const anchors = anchorsOf(
      '# Title\n## Step\n## Step\n```sh\n# not a heading\n```\n<a id="custom"></a>\n',
    );
    assert.deepEqual([...anchors].sort(), ['custom', 'step', 'step-1', 'title']);
  });

  test('when links sit in code, then they are not links; otherwise every form is found', () => {
    const markdown = [
      '[inline](a.md) and ![image](img/b.png "title")',
      '`[not a link](c.md)`',
      '```md',
      '[not a link either](d.md)',
      '```',
      '[ref]: e.md',
      '<a href="f.md">html</a>',
    ].join('\n');
    assert.deepEqual(
      linksOf(markdown).map((link) => `${link.line}:${link.target}`),
      ['1:a.md', '1:img/b.png', '6:e.md', '7:f.md'],
    );
  });

  test('when a link is broken, then the checker names the file, the line and why', () => {
    mkdirSync(join(root, 'docs'), { recursive: true });
    writeFileSync(join(root, 'docs', 'good.md'), '# Good\n## A section\n');
    writeFileSync(
      join(root, 'README.md'),
      [
        '[ok](docs/good.md#a-section) [web](https://example.com) [self](#top)',
        '[missing](docs/missing.md)',
        '[bad anchor](docs/good.md#no-such-section)',
        '[outside](../elsewhere.md)',
        '# Top',
      ].join('\n'),
    );
    assert.deepEqual(brokenLinks(['README.md', 'docs/good.md'], root), [
      'README.md:2: docs/missing.md does not exist',
      'README.md:3: docs/good.md#no-such-section: no heading with anchor #no-such-section in docs/good.md',
      'README.md:4: ../elsewhere.md points outside the repository',
    ]);
  });
});
