import type { RequestHandler } from 'express';
import { errors, type JWTPayload, jwtVerify } from 'jose';
import type { AuthConfig } from '../platform/config.ts';
import { AppError } from '../platform/errors.ts';
import {
  createIssuerKeys,
  type IssuerKeyOptions,
  IssuerUnavailableError,
  issuerUnavailable,
} from './issuer-keys.ts';

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

export interface AuthenticatorOptions {
  /** How the issuer's keys are fetched and kept; `maxStaleMs` comes from the config. */
  keys?: IssuerKeyOptions;
}

/**
 * Verifies bearer JWTs against the issuer's JWKS: signature with an allow-listed asymmetric
 * algorithm only (so `alg: none` and HS256-signed-with-the-public-key are refused), issuer,
 * audience, expiry with a small clock tolerance, and a string `sub`. Keys come from ./issuer-keys.ts:
 * an issuer that cannot be reached is a 503 while no usable keys are left, never a 401.
 */
export function createJwtAuthenticator(
  config: AuthConfig,
  options: AuthenticatorOptions = {},
): Authenticator {
  const keys = createIssuerKeys(config.jwksUrl, {
    maxStaleMs: config.jwksMaxStaleSec * 1000,
    ...options.keys,
  });
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof IssuerUnavailableError) throw issuerUnavailable(err);
      if (err instanceof errors.JOSEError) throw unauthenticated(`invalid bearer token (${err.code})`);
      throw err;
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw unauthenticated('invalid bearer token (the sub claim must be a non-empty string)');
    }
    return { subject: payload.sub, scopes: scopesOf(payload) };
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
