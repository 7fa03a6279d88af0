import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * A command run in a real pseudo-terminal, as a person runs it: the command leads its own session
 * with the terminal as its controlling terminal, so Ctrl-C reaches the whole foreground process
 * group through the terminal's line discipline. Python's `pty` module does the terminal work; it
 * also reports, through `pidfd`, when a process that is not its child ends.
 */
const driver = String.raw`
import os, pty, select, signal, sys, time
argv = sys.argv[1:]
pid, master = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
def say(line):
    sys.stdout.buffer.write(("\n@@" + line + "\n").encode()); sys.stdout.flush()
say("child %d" % pid)
pidfds = {}
master_open = True
stdin = sys.stdin.buffer.raw
child_fd = os.pidfd_open(pid)
while True:
    fds = [stdin] + list(pidfds) + ([master] if master_open else []) + ([child_fd] if child_fd is not None else [])
    ready, _, _ = select.select(fds, [], [])
    for fd in ready:
        if fd == child_fd:
            _, status = os.waitpid(pid, 0)
            os.close(child_fd)
            child_fd = None
            say("exit %d %d" % (os.waitstatus_to_exitcode(status), time.monotonic_ns() // 1000000))
        elif fd == master:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if data:
                sys.stdout.buffer.write(data); sys.stdout.flush()
            else:
                master_open = False
                os.close(master)
                say("eof %d" % (time.monotonic_ns() // 1000000))
        elif fd == stdin:
            line = stdin.readline()
            if not line:
                sys.exit(0)
            cmd, *rest = line.decode().split()
            now = time.monotonic_ns() // 1000000
            if cmd == "watch":
                try:
                    pidfds[os.pidfd_open(int(rest[0]))] = int(rest[0])
                except ProcessLookupError:
                    say("gone %s %d" % (rest[0], now))
            elif cmd == "ctrl-c":
                os.write(master, b"\x03")
            elif cmd == "term":
                os.kill(pid, signal.SIGTERM)
            elif cmd == "hup":
                # The terminal goes away: the shell sends SIGHUP to its job, and the terminal is gone.
                os.killpg(os.getpgid(pid), signal.SIGHUP)
                if master_open:
                    master_open = False
                    os.close(master)
            say("sent %s %d" % (cmd, now))
        else:
            say("gone %d %d" % (pidfds.pop(fd), time.monotonic_ns() // 1000000))
            os.close(fd)
`;

export interface TerminalRun {
  child: ChildProcess;
  /** Everything the command wrote to the terminal so far. */
  output(): string;
  /** Resolves once the terminal output matches. */
  waitForOutput(pattern: RegExp): Promise<RegExpExecArray>;
  /** Types Ctrl-C, sends SIGTERM to the command, or hangs the terminal up; resolves with when (ms). */
  send(action: 'ctrl-c' | 'term' | 'hup'): Promise<number>;
  /** Resolves with when (ms, same clock as `send`) process `pid` ended. */
  whenGone(pid: number): Promise<number>;
  /** Resolves with the command's exit code and when (ms) it exited. */
  exited: Promise<{ code: number; atMs: number }>;
  /** Ends the driver (and, with it, the terminal). */
  close(): Promise<void>;
}

export function runInTerminal(
  argv: string[],
  options: { cwd: string; env: Record<string, string> },
): TerminalRun {
  const child = spawn('python3', ['-u', '-c', driver, ...argv], {
    cwd: options.cwd,
    env: { ...options.env, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let text = '';
  const events: string[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    // Driver events are lines "@@…" of their own; everything else is terminal output.
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('@@')) events.push(line.slice(2));
      else text += `${line}\n`;
    }
    if (!pending.startsWith('@')) {
      text += pending;
      pending = '';
    }
    notify();
  });
  const waitFor = <T>(find: () => T | undefined): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          listeners.delete(check);
          resolve(found);
        }
      };
      listeners.add(check);
      child.once('exit', () => {
        check();
        if (listeners.delete(check)) reject(new Error(`terminal driver ended; output:\n${text}`));
      });
      check();
    });
  const event = (pattern: RegExp) =>
    waitFor(() => events.map((e) => pattern.exec(e)).find(Boolean) ?? undefined);
  return {
    child,
    output: () => text,
    waitForOutput: (pattern) => waitFor(() => pattern.exec(text) ?? undefined),
    async send(action) {
      child.stdin?.write(`${action}\n`);
      const [, atMs] = (await event(new RegExp(`^sent ${action} (\\d+)$`))) as string[];
      return Number(atMs);
    },
    async whenGone(pid) {
      child.stdin?.write(`watch ${pid}\n`);
      const [, atMs] = (await event(new RegExp(`^gone ${pid} (\\d+)$`))) as string[];
      return Number(atMs);
    },
    exited: event(/^exit (-?\d+) (\d+)$/).then(([, code, atMs]) => ({
      code: Number(code),
      atMs: Number(atMs),
    })),
    async close() {
      if (child.exitCode !== null) return;
      child.stdin?.end();
      await once(child, 'exit');
    },
  };
}
