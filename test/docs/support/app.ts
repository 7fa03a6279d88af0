import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createApp } from '../../../api/app.ts';
import { loadOpenApiDocument } from '../../../api/openapi.ts';
import type { EventRepository } from '../../../db/event-repository.ts';
import { createMetrics } from '../../../platform/metrics.ts';

/**
 * The real Express app, with authentication on (every token refused) and no backends: the reference
 * page and the spec need neither a token, nor PostgreSQL, nor SNS.
 */
export function createDocsApp(): Express {
  return createApp({
    log: pino({ level: 'silent' }),
    metrics: createMetrics(new Registry(), 'api'),
    repository: {} as EventRepository,
    publisher: {
      destination: 'events',
      publish: async () => {
        throw new Error('the docs tests publish nothing');
      },
    },
    openApiDocument: loadOpenApiDocument(),
    security: {
      authenticate: async () => {
        throw new Error('no token is valid here');
      },
    },
  });
}

export interface ListeningApp {
  baseUrl: string;
  close(): Promise<void>;
}

/** Serves the app on an ephemeral loopback port. */
export async function listen(app: Express): Promise<ListeningApp> {
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
