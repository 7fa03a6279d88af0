import type { Logger } from './logger.ts';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

export interface Shutdown {
  /** Runs every step once, in order, within the deadline; resolves with the exit code (0 = clean). */
  run(reason: string): Promise<number>;
  readonly started: boolean;
}

/**
 * Ordered, deadline-bound shutdown. Steps run in sequence (readiness off, stop intake, drain,
 * close pools, flush telemetry); a failing step is logged and the rest still run. When the
 * deadline passes the remaining steps are abandoned and the exit code is 1.
 */
export function createShutdown(options: { log: Logger; timeoutMs: number; steps: ShutdownStep[] }): Shutdown {
  let running: Promise<number> | undefined;
  const runSteps = async (reason: string): Promise<number> => {
    const { log, timeoutMs, steps } = options;
    log.info({ reason, timeoutMs }, 'shutting down');
    let failed = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const all = (async () => {
      for (const step of steps) {
        const startedAt = performance.now();
        try {
          await step.run();
          log.debug(
            { step: step.name, durationMs: Math.round(performance.now() - startedAt) },
            'shutdown step done',
          );
        } catch (err) {
          failed = true;
          log.error({ step: step.name, err }, 'shutdown step failed');
        }
      }
      return 'done' as const;
    })();
    const outcome = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      log.error({ timeoutMs }, 'shutdown deadline passed, exiting with work unfinished');
      return 1;
    }
    log.info('shutdown complete');
    return failed ? 1 : 0;
  };
  return {
    run(reason) {
      running ??= runSteps(reason);
      return running;
    },
    get started() {
      return running !== undefined;
    },
  };
}

/**
 * The signals that end a process: SIGTERM (Kubernetes, process managers), SIGINT (Ctrl-C) and SIGHUP
 * (the terminal closed), whose default would end it without draining.
 */
export const shutdownSignals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * A signal this soon after the first is the same request, delivered twice: a Ctrl-C reaches both
 * `npm start` and its child, and npm passes its copy on.
 */
const repeatWindowMs = 1_000;

/**
 * Wires the shutdown signals to the shutdown and exits with its code. A second signal, later than a
 * repeat of the first, exits at once.
 */
export function exitOnSignals(shutdown: Shutdown, log: Logger): void {
  let firstAtMs = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdown.started) {
      if (performance.now() - firstAtMs < repeatWindowMs) return;
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    firstAtMs = performance.now();
    void shutdown.run(signal).then((code) => process.exit(code));
  };
  for (const signal of shutdownSignals) process.on(signal, onSignal);
}

/**
 * Shuts down when the parent process goes away without signalling this one: `npm start` killed with
 * SIGTERM exits without passing the signal on, and its child would be left running, reparented.
 * Checks every `intervalMs` (default 250) on an unreferenced timer.
 */
export function exitWhenOrphaned(shutdown: Shutdown, log: Logger, intervalMs = 250): void {
  const parentPid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parentPid || shutdown.started) return;
    clearInterval(timer);
    log.info({ parentPid }, 'parent process exited');
    void shutdown.run('parent exited').then((code) => process.exit(code));
  }, intervalMs);
  timer.unref();
}
