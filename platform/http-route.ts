/**
 * The route template a request matched (`/v1/events/:source/:id`), never its raw path: what the
 * request metrics and the HTTP server span are labelled with, so label values stay bounded. The
 * route Express matched, or else the OpenAPI path the validator matched (a request it refused
 * before routing); undefined when neither matched.
 */
export function routeTemplate(request: unknown): string | undefined {
  const { route, openapi } = request as { route?: { path?: unknown }; openapi?: { expressRoute?: unknown } };
  const matched = route?.path ?? openapi?.expressRoute;
  return typeof matched === 'string' ? matched : undefined;
}
