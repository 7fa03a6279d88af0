import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import supertest from 'supertest';
import { loadOpenApiDocument } from '../../api/openapi.ts';
import { createDocsApp, type ListeningApp, listen } from './support/app.ts';
import { chromiumAvailable, type HeadlessBrowser, launchChromium } from './support/browser.ts';

const httpMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every operation of api/openapi.yaml as "METHOD /path". */
function specOperations(): string[] {
  const paths = loadOpenApiDocument().paths as Record<string, Record<string, unknown>>;
  return Object.entries(paths)
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => httpMethods.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    )
    .sort();
}

describe('GET /docs over HTTP', () => {
  const http = supertest(createDocsApp());

  test('when /docs is fetched without a token, then it is an HTML page under a self-only CSP with no inline script', async () => {
    const res = await http
      .get('/docs')
      .expect(200)
      .expect('content-type', /^text\/html/);
    const csp = res.headers['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-eval|script-src[^;]*unsafe-inline/);
    const scripts = [...res.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length > 0);
    for (const [, attributes, body] of scripts) {
      assert.match(attributes ?? '', /\bsrc="\/docs\/assets\/[\w.-]+"/);
      assert.equal(body?.trim(), '', 'no inline script');
    }
    assert.doesNotMatch(res.text, /\b(?:src|href)="(?:https?:)?\/\//, 'no asset from another origin');
  });

  test('when the page assets are fetched, then the app serves each itself with its content type', async () => {
    const page = await http.get('/docs').expect(200);
    const assets = [...page.text.matchAll(/\b(?:src|href)="(\/docs\/assets\/[\w.-]+)"/g)].map(
      (m) => m[1] as string,
    );
    assert.ok(assets.length >= 4, assets.join(', '));
    for (const asset of assets) {
      const res = await http.get(asset).expect(200);
      assert.match(res.headers['content-type'] ?? '', /^(text\/css|text\/javascript|image\/png)/, asset);
    }
  });

  test('when an asset outside the fixed list is asked for, then 404 problem+json', async () => {
    for (const path of [
      '/docs/assets/package.json',
      '/docs/assets/..%2Fpackage.json',
      '/docs/assets/index.html',
    ]) {
      const res = await http.get(path).expect(404);
      assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, path);
    }
  });
});

describe('the reference page in headless Chromium', () => {
  const skip =
    !chromiumAvailable && process.env.CI !== 'true'
      ? 'no /usr/bin/chromium (apt-get install chromium)'
      : false;
  let app: ListeningApp;
  let chromium: HeadlessBrowser;
  let page: Page;
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  before(async () => {
    if (skip) return;
    app = await listen(createDocsApp());
    chromium = await launchChromium();
    page = await chromium.context.newPage();
    page.on('request', (request) => requests.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    await page.goto(`${app.baseUrl}/docs`);
    await page.locator('.opblock').first().waitFor({ timeout: 30_000 });
    const screenshotDir = process.env.DOCS_SCREENSHOT_DIR;
    if (screenshotDir)
      await page.screenshot({ path: join(screenshotDir, 'reference-page.png'), fullPage: true });
  });
  after(async () => {
    await chromium?.close();
    await app?.close();
  });

  test('when the page renders, then it shows every path and method of the spec, and nothing else', {
    skip,
  }, async () => {
    const shown = await page.$$eval('.opblock', (blocks) =>
      blocks.map(
        (block) =>
          `${block.querySelector('.opblock-summary-method')?.textContent?.trim()} ${block
            .querySelector('.opblock-summary-path')
            ?.getAttribute('data-path')}`,
      ),
    );
    assert.deepEqual(shown.sort(), specOperations());
    assert.ok(specOperations().length >= 5);
  });

  test('when an operation is opened, then its request body offers the three CloudEvents media types and binary mode', {
    skip,
  }, async () => {
    await page.locator('#operations-events-ingestEvents .opblock-summary').click();
    const select = page.locator('#operations-events-ingestEvents .body-param-content-type select');
    await select.waitFor({ timeout: 20_000 });
    const types = await select.locator('option').allTextContents();
    assert.deepEqual(types.sort(), [
      '*/*',
      'application/cloudevents+json',
      'application/cloudevents-batch+json',
      'application/json',
    ]);
  });

  test('when the page loads, then every request stays on the app and nothing breaks the CSP or throws', {
    skip,
  }, () => {
    assert.ok(requests.length >= 5, requests.join('\n'));
    for (const url of requests) assert.ok(url.startsWith(`${app.baseUrl}/`), `request left the app: ${url}`);
    assert.ok(requests.includes(`${app.baseUrl}/openapi.json`), 'the page reads the spec from the app');
    assert.deepEqual(consoleErrors, []);
  });
});
