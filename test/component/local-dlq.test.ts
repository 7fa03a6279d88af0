import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { freshTmpDir, type RunningLocalMode, repoRoot, startLocalMode } from '../support/local-mode.ts';

const run = promisify(execFile);

/** Runs a command line in a shell with nothing set but PATH, HOME and TMPDIR, as a new terminal has. */
async function shell(command: string, tmp: string) {
  try {
    const { stdout, stderr } = await run('sh', ['-c', command], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmp,
        TMPDIR: tmp,
        npm_config_update_notifier: 'false',
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the DLQ tool against npm start', { timeout: 180_000 }, () => {
  let tmp: string;
  let local: RunningLocalMode;
  let sqs: SQSClient;

  before(async () => {
    tmp = freshTmpDir();
    local = await startLocalMode(tmp);
    sqs = new SQSClient({
      endpoint: local.state.awsEndpointUrl,
      region: local.state.awsRegion,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    // Two poison messages, straight onto the queue as a broken producer would put them.
    for (const body of ['{"specversion":', 'not json either']) {
      const { MessageId } = await sqs.send(
        new SendMessageCommand({ QueueUrl: local.state.queueUrl, MessageBody: body }),
      );
      await local.waitForOutput(new RegExp(`"messageId":"${MessageId}"[^\\n]*"msg":"message moved to DLQ"`));
    }
  });
  after(async () => {
    sqs?.destroy();
    assert.equal(await local?.stop(), 0);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('when `npm run dlq -- list` runs with nothing set, then it finds the running stack and lists the poison with its reason', async () => {
    const { code, stdout, stderr } = await shell('npm run dlq -- list', tmp);
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`using the local stack of \`npm start\`: pid ${local.state.pid}`));
    assert.match(stdout, /^2 message\(s\) in \S+ingesta-events-dlq$/m);
    const rows = stdout.split('\n').filter((l) => /\sNOT_JSON\s/.test(l));
    assert.equal(rows.length, 2, stdout);
    assert.ok(
      rows.every((r) => /body is not valid JSON/.test(r)),
      stdout,
    );
  });

  test('when listing with --max 1, then the count is the queue’s, not the listing’s', async () => {
    const { code, stdout, stderr } = await shell('npm run dlq -- list --max 1', tmp);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^2 message\(s\) in \S+ \(1 listed, --max 1\)$/m);
  });

  test('when the banner’s command line is pasted into a shell that finds no stack, then it lists the same', async () => {
    const pasted = /^ {4}(AWS_ENDPOINT_URL=\S+ .* npm run dlq -- list)$/m.exec(local.stdout())?.[1];
    assert.ok(pasted, `the banner has the command line:\n${local.stdout()}`);
    const elsewhere = freshTmpDir();
    try {
      const { code, stdout, stderr } = await shell(pasted, elsewhere);
      assert.equal(code, 0, stderr);
      assert.doesNotMatch(stderr, /using the local stack/);
      assert.match(stdout, /^2 message\(s\) in /m);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
