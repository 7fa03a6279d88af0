// `helm test` check, run with the app image as `node --input-type=module -e <this file>`: the image has
// no shell. It asks the API Service whether the pods are ready and whether GET /v1/events answers
// as the release's auth settings say it should. Exits non-zero on the first failed check.
const adminUrl = process.env.INGESTA_TEST_ADMIN_URL;
const apiUrl = process.env.INGESTA_TEST_API_URL;
const expectedStatus = Number(process.env.INGESTA_TEST_EXPECTED_EVENTS_STATUS);
const token = process.env.INGESTA_TEST_BEARER_TOKEN;

async function check(name, url, init, expected) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (response.status !== expected) {
    throw new Error(
      `${name}: GET ${url} answered ${response.status}, expected ${expected}: ${body.slice(0, 500)}`,
    );
  }
  process.stdout.write(`ok ${name}: GET ${url} -> ${response.status}\n`);
  return { response, body };
}

await check('readiness', `${adminUrl}/readyz`, {}, 200);

const headers = { accept: 'application/json' };
if (token) headers.authorization = `Bearer ${token}`;
const { response, body } = await check(
  'list events',
  `${apiUrl}/v1/events?limit=1`,
  { headers },
  expectedStatus,
);
const contentType = response.headers.get('content-type') ?? '';
if (expectedStatus === 200 && !Array.isArray(JSON.parse(body).items)) {
  throw new Error(`list events: expected an event page with an items array, got ${body.slice(0, 500)}`);
}
if (expectedStatus !== 200 && !contentType.startsWith('application/problem+json')) {
  throw new Error(`list events: expected an application/problem+json error, got ${contentType}`);
}
