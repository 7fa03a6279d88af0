import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** How the JWKS endpoint answers: its keys, or one of the ways an issuer fails. */
export type JwksMode = 'ok' | 'refuse' | 'error500' | 'badJson' | 'hang';

export interface FlakyJwks {
  url: string;
  mode: JwksMode;
  /** Requests that reached the endpoint. */
  requests: number;
  stop(): Promise<void>;
}

/** A JWKS endpoint on loopback serving `key`, whose failure mode a test switches at will. */
export async function startFlakyJwks(key: JWK): Promise<FlakyJwks> {
  const hanging = new Set<ServerResponse>();
  const state: FlakyJwks = {
    url: '',
    mode: 'ok',
    requests: 0,
    stop: async () => {
      for (const res of hanging) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  const server = createServer((req, res) => {
    state.requests++;
    switch (state.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key] }));
        return;
      case 'refuse':
        req.socket.destroy();
        return;
      case 'error500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      case 'badJson':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [');
        return;
      case 'hang':
        hanging.add(res);
        res.once('close', () => hanging.delete(res));
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return state;
}
