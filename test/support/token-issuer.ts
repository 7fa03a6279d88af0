import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface TokenIssuer {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Signs a token; claims and header fields override the defaults (a valid, 5-minute token). */
  sign(options?: {
    scope?: string;
    claims?: Record<string, unknown>;
    expiresInSec?: number;
  }): Promise<string>;
  /** The public key as a JWK, for forging HS256 tokens with it. */
  publicJwk: JWK;
  /** Signs with a key the JWKS does not hold, under the same kid. */
  signWithForeignKey(scope: string): Promise<string>;
  stop(): Promise<void>;
}

/** A real OIDC-style issuer on loopback: an RSA key pair and a JWKS endpoint. */
export async function startTokenIssuer(): Promise<TokenIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [publicJwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${base}/`;
  const audience = 'ingesta-api';
  const build = (scope: string, claims: Record<string, unknown> = {}, expiresInSec = 300) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: issuer,
      aud: audience,
      sub: 'client-1',
      iat: now,
      exp: now + expiresInSec,
      scope,
      ...claims,
    }).setProtectedHeader({ alg: 'RS256', kid: 'k1' });
  };
  return {
    issuer,
    audience,
    jwksUrl: `${base}/.well-known/jwks.json`,
    publicJwk,
    sign: ({ scope = 'events:write events:read', claims, expiresInSec } = {}) =>
      build(scope, claims, expiresInSec).sign(privateKey),
    signWithForeignKey: (scope) => build(scope).sign(foreign.privateKey),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
