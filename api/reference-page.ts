import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Router } from 'express';

export interface ReferencePageOptions {
  /** Where the page fetches the OpenAPI document from. Default `/openapi.json` (served by the app). */
  specUrl?: string;
  /** Page title. Default `ingesta API reference`. */
  title?: string;
}

/** Assets served under /docs/assets/: a fixed list, so no other file of the package is reachable. */
const packagedAssets = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
} as const;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.codePointAt(0)};`);

/**
 * The page carries no inline script or style: it stays within the app's Content-Security-Policy
 * (`default-src 'self'`), and its configuration is this separate script.
 */
const initScript = (specUrl: string) => `'use strict';
window.addEventListener('DOMContentLoaded', function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(specUrl)},
    dom_id: '#reference',
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    displayOperationId: true,
    // The default validator is an outside service: no request leaves for it.
    validatorUrl: null,
  });
});
`;

const pageCss = `body { margin: 0; background: #fafafa; }
.reference-header { padding: 12px 20px; background: #1b1f24; color: #f5f5f5; font: 600 16px/1.4 sans-serif; }
.reference-header small { font-weight: 400; opacity: 0.75; margin-left: 12px; }
`;

const page = (title: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHtml(title)}</title>
    <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
    <link rel="stylesheet" href="/docs/assets/reference.css">
  </head>
  <body>
    <header class="reference-header">${escapeHtml(title)}<small>rendered from api/openapi.yaml</small></header>
    <main id="reference"></main>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/reference.js"></script>
  </body>
</html>
`;

/**
 * GET /docs: an API reference rendered by Swagger UI from the app's own OpenAPI document. Every
 * asset comes from the `swagger-ui-dist` package and is served by the app itself (no CDN), so the
 * page works offline, behind a port-forward, and under `default-src 'self'`.
 */
export function referencePageRouter(options: ReferencePageOptions = {}): Router {
  const { specUrl = '/openapi.json', title = 'ingesta API reference' } = options;
  const distDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const generated: Record<string, { type: string; body: string }> = {
    'reference.js': { type: 'text/javascript; charset=utf-8', body: initScript(specUrl) },
    'reference.css': { type: 'text/css; charset=utf-8', body: pageCss },
  };
  const html = page(title);
  const router = Router();

  router.get('/docs', (_req, res) => {
    res.type('text/html; charset=utf-8').set('cache-control', 'no-cache').send(html);
  });

  router.get('/docs/assets/:file', (req, res, next) => {
    const { file } = req.params;
    const own = generated[file];
    if (own) {
      res.type(own.type).set('cache-control', 'no-cache').send(own.body);
      return;
    }
    if (!Object.hasOwn(packagedAssets, file)) return next();
    res
      .type(packagedAssets[file as keyof typeof packagedAssets])
      .set('cache-control', 'public, max-age=3600')
      .sendFile(join(distDir, file));
  });

  return router;
}
