/**
 * The SNS/SQS emulator as a process of its own, so a test can kill it and start it again. Its state
 * lives in SQLite under `--data-dir` (fauxqs' persistence), so a restart keeps queued messages as SNS
 * and SQS would. Usage: `node emulator-main.ts --port <port> --data-dir <dir>`; prints one JSON line
 * `{"msg":"emulator ready",…}` with the endpoint and resource identifiers once it serves them.
 */
import { Server } from 'node:net';
import { parseArgs } from 'node:util';
import { startFauxqs } from 'fauxqs';
import { createMessagingResources } from '../../../local/emulator.ts';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'data-dir': { type: 'string' } },
});
const port = Number(values.port);
const dataDir = values['data-dir'];
if (!Number.isInteger(port) || port <= 0 || !dataDir) {
  console.error('usage: emulator-main.ts --port <port> --data-dir <dir>');
  process.exit(2);
}

// startFauxqs (the only entry point with persistence) listens on every interface; this emulator
// serves loopback only.
const listen = Server.prototype.listen;
Server.prototype.listen = function listenOnLoopback(this: Server, ...args: unknown[]) {
  const [options] = args;
  if (typeof options === 'object' && options !== null && 'host' in options) {
    (options as { host?: string }).host = '127.0.0.1';
  }
  return (listen as (...a: unknown[]) => Server).apply(this, args);
} as typeof Server.prototype.listen;

const region = 'us-east-1';
const server = await startFauxqs({ port, logger: false, defaultRegion: region, dataDir });
const endpoint = `http://127.0.0.1:${server.port}`;
// Idempotent: on a restart the persisted resources are found again.
const resources = await createMessagingResources(endpoint, region);
process.stdout.write(`${JSON.stringify({ msg: 'emulator ready', endpoint, region, ...resources })}\n`);
process.once('SIGTERM', () => {
  void server.stop().finally(() => process.exit(0));
});
