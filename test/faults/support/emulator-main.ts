/**
 * The SNS/SQS emulator as a process of its own, so a test can kill it and start it again.
 * Usage: `node emulator-main.ts --port <port> [--data-dir <dir>]`. Prints one JSON line
 * `{"msg":"emulator ready",…}` with the endpoint and resource identifiers once it serves them.
 *
 * Without `--data-dir` it is the in-memory emulator `npm start` uses. With it, fauxqs keeps its state
 * in SQLite there, so a restart finds the messages it held, as SNS and SQS would after an outage.
 * (fauxqs 2.4.1's persistence fails ChangeMessageVisibility to 0, so only the scenario that restarts
 * the emulator uses it.)
 */
import { Server } from 'node:net';
import { parseArgs } from 'node:util';
import { startFauxqs } from 'fauxqs';
import { createMessagingResources, startLocalMessaging } from '../../../local/emulator.ts';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'data-dir': { type: 'string' } },
});
const port = Number(values.port);
const dataDir = values['data-dir'];
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: emulator-main.ts --port <port> [--data-dir <dir>]');
  process.exit(2);
}
const region = 'us-east-1';

async function startPersistent(dir: string) {
  // startFauxqs, the only entry point with persistence, listens on every interface; this emulator
  // serves loopback only.
  const listen = Server.prototype.listen;
  Server.prototype.listen = function listenOnLoopback(this: Server, ...args: unknown[]) {
    const [options] = args;
    if (typeof options === 'object' && options !== null && 'host' in options) {
      (options as { host?: string }).host = '127.0.0.1';
    }
    return (listen as (...a: unknown[]) => Server).apply(this, args);
  } as typeof Server.prototype.listen;
  const server = await startFauxqs({ port, logger: false, defaultRegion: region, dataDir: dir });
  const endpoint = `http://127.0.0.1:${server.port}`;
  // Idempotent: on a restart the persisted resources are found again.
  return { endpoint, ...(await createMessagingResources(endpoint, region)), stop: () => server.stop() };
}

const emulator = dataDir ? await startPersistent(dataDir) : await startLocalMessaging({ port, region });
const { endpoint, topicArn, queueUrl, dlqUrl } = emulator;
process.stdout.write(
  `${JSON.stringify({ msg: 'emulator ready', endpoint, region, topicArn, queueUrl, dlqUrl })}\n`,
);
process.once('SIGTERM', () => {
  void emulator.stop().finally(() => process.exit(0));
});
