import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface SlowClient {
  socket: Socket;
  /** Everything the server has written so far. */
  received(): string;
  /** The status code of the server's answer, once it has written one. */
  status(): number | undefined;
  /** Resolves when the server closes or resets the connection. */
  closed: Promise<void>;
  stop(): void;
}

/**
 * A client that sends a request's head at once and then its body a few bytes at a time, never
 * finishing it unless the server stops it first: the slow-body (slow POST) attack.
 */
export async function trickle(options: {
  port: number;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** Declared length of the body; far more than is ever sent. */
  contentLength?: number;
  bytesPerTick?: number;
  tickMs?: number;
}): Promise<SlowClient> {
  const {
    port,
    method = 'POST',
    path = '/v1/events',
    headers = {},
    contentLength = 100_000,
    bytesPerTick = 1,
    tickMs = 100,
  } = options;
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', () => {}); // a reset is one way of being cut off
  const closed = once(socket, 'close').then(() => undefined);
  const head = [
    `${method} ${path} HTTP/1.1`,
    'host: 127.0.0.1',
    'content-type: application/cloudevents+json',
    `content-length: ${contentLength}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    '',
  ].join('\r\n');
  socket.write(`${head}{"specversion":"1.0",`);
  const timer = setInterval(() => {
    if (socket.writable) socket.write(' '.repeat(bytesPerTick));
  }, tickMs);
  const stop = () => {
    clearInterval(timer);
    socket.destroy();
  };
  socket.once('close', () => clearInterval(timer));
  return {
    socket,
    received: () => text,
    status: () => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      return match ? Number(match[1]) : undefined;
    },
    closed,
    stop,
  };
}
