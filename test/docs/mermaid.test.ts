import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './support/browser.ts';
import { documentationFiles, fencedBlocks, repoRoot } from './support/markdown.ts';

/** The mermaid package's self-contained browser build, the renderer GitHub uses too. */
const mermaidBundle = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');

interface Diagram {
  where: string;
  source: string;
}

const diagrams: Diagram[] = documentationFiles().flatMap((file) =>
  fencedBlocks(readFileSync(join(repoRoot, file), 'utf8'))
    .filter((block) => block.lang === 'mermaid')
    .map((block) => ({ where: `${file}:${block.line}`, source: block.body })),
);

/** Renders one diagram to SVG in the page; resolves to the SVG, or to the error mermaid reports. */
async function render(page: Page, source: string, id: string): Promise<{ svg?: string; error?: string }> {
  return page.evaluate(
    async ({ source, id }) => {
      const mermaid = (
        globalThis as unknown as {
          mermaid: {
            initialize(config: object): void;
            parse(text: string): Promise<unknown>;
            render(id: string, text: string): Promise<{ svg: string }>;
          };
        }
      ).mermaid;
      mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
      try {
        await mermaid.parse(source);
        const { svg } = await mermaid.render(id, source);
        return { svg };
      } catch (err) {
        return { error: String((err as Error)?.message ?? err) };
      }
    },
    { source, id },
  );
}

describe('Mermaid diagrams in README.md and docs/', () => {
  const skip =
    !chromiumAvailable && process.env.CI !== 'true'
      ? 'no /usr/bin/chromium (apt-get install chromium)'
      : false;
  let chromium: HeadlessBrowser;
  let page: Page;

  before(async () => {
    if (skip) return;
    chromium = await launchChromium();
    page = await chromium.context.newPage();
    await page.setContent('<!doctype html><html><body></body></html>');
    await page.addScriptTag({ content: readFileSync(mermaidBundle, 'utf8') });
  });
  after(async () => {
    await chromium?.close();
  });

  test('when the docs are read, then they hold the architecture diagrams', () => {
    const inArchitecture = diagrams.filter((d) => d.where.startsWith('docs/architecture.md:'));
    assert.ok(
      inArchitecture.length >= 3,
      `docs/architecture.md has ${inArchitecture.length} Mermaid diagrams`,
    );
    const kinds = inArchitecture.map((d) => d.source.trim().split(/\s/)[0]);
    assert.ok(kinds.includes('sequenceDiagram'), 'the event sequence diagram is missing');
  });

  test('when a diagram is broken, then rendering reports it (the check is live)', { skip }, async () => {
    const result = await render(page, 'flowchart LR\n  a --> (b', 'broken');
    assert.ok(result.error, 'a broken diagram rendered');
  });

  test('when every diagram is rendered, then each one parses and becomes an SVG', { skip }, async () => {
    const failures: string[] = [];
    for (const [index, diagram] of diagrams.entries()) {
      const result = await render(page, diagram.source, `diagram${index}`);
      if (result.error) failures.push(`${diagram.where}: ${result.error}`);
      else if (!result.svg?.startsWith('<svg')) failures.push(`${diagram.where}: no SVG`);
    }
    assert.deepEqual(failures, []);
  });
});
