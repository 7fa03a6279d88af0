/**
 * The route template a request matched (`/v1/events/:source/:id`), never its raw path: what the
 * request metrics and the HTTP server span are labelled with, so label values stay bounded. The
 * route Express matched, else the OpenAPI path the validator matched, else the known route its path
 * names (set by {@link knownRouteMiddleware} before anything can refuse the request: a load-shed
 * 503, a 401, a 429, a 413 or a malformed body keeps its route); undefined only for unknown paths.
 */
export function routeTemplate(request: unknown): string | undefined {
  const { route, openapi, knownRoute } = request as {
    route?: { path?: unknown };
    openapi?: { expressRoute?: unknown };
    knownRoute?: unknown;
  };
  const matched = route?.path ?? openapi?.expressRoute ?? knownRoute;
  return typeof matched === 'string' ? matched : undefined;
}

/**
 * A matcher from a raw path to one of `templates` (OpenAPI `/v1/events/{source}/{id}` or Express
 * `/v1/events/:source/:id` style), answered in Express style; undefined when none matches. Literal
 * templates win over parameterised ones.
 */
export function routeMatcher(templates: readonly string[]): (path: string) => string | undefined {
  const routes = templates
    .map((template) => template.replace(/\{([^}/]+)\}/g, ':$1'))
    .sort((a, b) => a.split(':').length - b.split(':').length)
    .map((template) => ({
      template,
      pattern: new RegExp(
        `^${template
          .split('/')
          .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/')}/?$`,
      ),
    }));
  return (path) => routes.find((r) => r.pattern.test(path))?.template;
}

/**
 * Marks each request with the known route its path names, first thing, so whatever refuses it
 * later still labels it by route.
 */
export function knownRouteMiddleware(templates: readonly string[]) {
  const match = routeMatcher(templates);
  return (req: { path: string }, _res: unknown, next: () => void): void => {
    const knownRoute = match(req.path);
    if (knownRoute !== undefined) (req as { knownRoute?: string }).knownRoute = knownRoute;
    next();
  };
}
