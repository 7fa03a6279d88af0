import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { freshTmpDir, repoRoot, startLocalMode } from '../support/local-mode.ts';

const run = promisify(execFile);

interface Example {
  /** The command as the README shows it. */
  command: string;
  /** The answer the README shows under it, `…` standing for what differs from run to run. */
  expected: string;
}

/**
 * The `sh` blocks of the README's "Use it" section, each command with the `# answer` line under it.
 * Assignments (`today=$(…)`) carry over to the commands after them, as in one terminal.
 */
function readmeExamples(readme: string): Example[] {
  const section = readme.slice(readme.indexOf('## Use it'), readme.indexOf('### The dead-letter queue'));
  const examples: Example[] = [];
  for (const [, block] of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let lines: string[] = [];
    for (const line of (block ?? '').split('\n')) {
      if (line.startsWith('# ')) {
        examples.push({ command: lines.join('\n'), expected: line.slice(2) });
        lines = [];
      } else if (line.trim() !== '') {
        lines.push(line);
      }
    }
    assert.deepEqual(lines, [], 'every command in the README shows its answer');
  }
  return examples;
}

/** The README's answer as a pattern: `…` matches anything, the rest literally. */
function answerPattern(expected: string): { status: number | undefined; body: RegExp } {
  const [, status, body = expected] = /^(\d{3}) (.*)$/.exec(expected) ?? [];
  const literal = body
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return { status: status ? Number(status) : undefined, body: new RegExp(`^${literal}$`) };
}

/** Status (for `curl -i`) and body of a curl command's output. */
function answerOf(command: string, stdout: string): { status: number | undefined; body: string } {
  if (!/\s-i\s/.test(command)) return { status: undefined, body: stdout.trim() };
  const [head = '', body = ''] = stdout.split(/\r?\n\r?\n/, 2);
  return { status: Number(/^HTTP\/\S+ (\d{3})/.exec(head)?.[1]), body: body.trim() };
}

test('when the README’s examples are pasted against a fresh npm start, then each answer is the one the README shows', {
  timeout: 180_000,
}, async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const examples = readmeExamples(readme);
  assert.ok(examples.length >= 6, `examples found: ${examples.length}`);
  const tmp = freshTmpDir();
  const local = await startLocalMode(tmp);
  try {
    // The one change: the port, picked free here so the test runs beside a developer's npm start.
    const port = new URL(local.state.apiUrl).port;
    const assignments: string[] = [];
    for (const { command, expected } of examples) {
      const lines = command.split('\n');
      assignments.push(...lines.filter((l) => /^\w+=\$\(.*\)$/.test(l)));
      const script = [...assignments, command].join('\n').replaceAll('localhost:8080', `localhost:${port}`);
      const want = answerPattern(expected);
      // Reads may run ahead of the consumer storing what was just sent; a person pasting would not.
      const retries = !/-X POST/.test(command);
      const giveUpAtMs = performance.now() + 30_000;
      let got: { status: number | undefined; body: string };
      for (;;) {
        const { stdout } = await run('bash', ['-c', script], { cwd: repoRoot });
        got = answerOf(command, stdout);
        if (got.status === want.status && want.body.test(got.body)) break;
        if (!retries || performance.now() > giveUpAtMs) break;
      }
      t.diagnostic(
        `${command.split('\n').at(-1)?.slice(0, 80)} → ${got.status ?? ''} ${got.body.slice(0, 80)}`,
      );
      assert.equal(got.status, want.status, `status of:\n${command}`);
      assert.match(got.body, want.body, `answer of:\n${command}`);
    }
  } finally {
    assert.equal(await local.stop(), 0);
    rmSync(tmp, { recursive: true, force: true });
  }
});
