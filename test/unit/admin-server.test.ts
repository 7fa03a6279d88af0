import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { type AdminServer, createAdminServer, type HealthCheck } from '../../platform/admin-server.ts';

const servers: AdminServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function readyz(readiness: HealthCheck[], options: { draining?: boolean } = {}) {
  const admin = createAdminServer({
    registry: new Registry(),
    log: pino({ level: 'silent' }),
    readiness,
    checkTimeoutMs: 200,
  });
  servers.push(admin);
  const port = await admin.listen(0, '127.0.0.1');
  if (options.draining) admin.setDraining();
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const up: HealthCheck['check'] = async () => {};
const down: HealthCheck['check'] = async () => {
  throw new Error('connect ECONNREFUSED');
};

test('when a required dependency is down, then /readyz is 503 and names it', async () => {
  const { status, body } = await readyz([
    { name: 'sns', check: up },
    { name: 'database', check: down },
  ]);
  assert.equal(status, 503);
  assert.deepEqual(body.checks, [
    { name: 'sns', required: true, ok: true },
    { name: 'database', required: true, ok: false, error: 'connect ECONNREFUSED' },
  ]);
});

test('when only an optional dependency is down, then /readyz is 200 and reports it as degraded', async () => {
  const { status, body } = await readyz([{ name: 'database', check: down, required: false }]);
  assert.equal(status, 200);
  assert.equal(body.ok, true);
  assert.equal(body.degraded, true);
});

test('when a check hangs, then /readyz answers 503 within the check timeout', async () => {
  const { status, body } = await readyz([{ name: 'database', check: () => new Promise(() => {}) }]);
  assert.equal(status, 503);
  assert.match(JSON.stringify(body.checks), /timed out after 200 ms/);
});

test('when the process drains, then /readyz is 503 whatever its dependencies say', async () => {
  const { status, body } = await readyz([{ name: 'database', check: up }], { draining: true });
  assert.equal(status, 503);
  assert.equal(body.draining, true);
});
