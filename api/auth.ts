import type { RequestHandler } from 'express';
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import type { AuthConfig } from '../platform/config.ts';
import { AppError, dependencyUnavailable } from '../platform/errors.ts';

export interface Principal {
  subject: string;
  scopes: ReadonlySet<string>;
}

export type Authenticator = (token: string) => Promise<Principal>;

export const scopes = { write: 'events:write', read: 'events:read', replay: 'events:replay' } as const;

const unauthenticated = (detail: string) => new AppError(401, 'UNAUTHENTICATED', detail);

/** `scope` (space-separated, RFC 8693 / Cognito) or `scp` (array or string, Entra ID / Okta). */
function scopesOf(payload: JWTPayload): Set<string> {
  const raw = payload.scope ?? payload.scp;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : [];
  return new Set(list.filter((s): s is string => typeof s === 'string' && s.length > 0));
}

/**
 * Verifies bearer JWTs against the issuer's JWKS: signature with an allow-listed asymmetric
 * algorithm only (so `alg: none` and HS256-signed-with-the-public-key are refused), issuer,
 * audience, expiry with a small clock tolerance. Keys are cached and refetched on rotation.
 */
export function createJwtAuthenticator(config: AuthConfig): Authenticator {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
    timeoutDuration: 2_000,
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      });
      return { subject: String(payload.sub), scopes: scopesOf(payload) };
    } catch (err) {
      if (err instanceof errors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message))) {
        throw dependencyUnavailable('the token issuer keys', err, 5);
      }
      if (err instanceof errors.JOSEError) throw unauthenticated(`invalid bearer token (${err.code})`);
      throw err;
    }
  };
}

/** The scope a request needs: replays events:replay, other writes events:write, reads events:read. */
const requiredScope = (method: string, path: string) =>
  path.startsWith('/replays') ? scopes.replay : method === 'POST' ? scopes.write : scopes.read;

/**
 * Authenticates every /v1 request before its body is even parsed. 401 without a valid bearer token,
 * 403 without the scope the method needs. The principal feeds the per-principal rate limit.
 */
export function requireAuth(authenticate: Authenticator): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
    if (!match?.[1]) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw unauthenticated('a bearer token is required');
    }
    let principal: Principal;
    try {
      principal = await authenticate(match[1]);
    } catch (err) {
      if (err instanceof AppError && err.status === 401) {
        res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      }
      throw err;
    }
    const scope = requiredScope(req.method, req.path);
    if (!principal.scopes.has(scope)) {
      res.setHeader('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${scope}"`);
      throw new AppError(403, 'FORBIDDEN', `the token lacks the ${scope} scope`);
    }
    // req.log, made on first use, binds the principal too.
    req.principal = principal;
    next();
  };
}
