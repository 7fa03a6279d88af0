import { once } from 'node:events';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

/**
 * Local mode runs the SNS/SQS emulator and the consumer in worker threads of their own, so the API's
 * event loop serves only HTTP requests, as it does in a pod. A worker answers `ready` with what the
 * main thread needs (ports, URLs), and stops on `stop`.
 */
type ToMain<T> = { type: 'ready'; value: T } | { type: 'failed'; message: string };
type ToWorker = { type: 'stop' };

export interface RunningWorker<T> {
  ready: T;
  /** Resolves with the worker's exit code. */
  exited: Promise<number>;
  /** Asks the worker to stop what it runs and waits until the thread has ended. */
  stop(): Promise<void>;
  /** Called when the worker fails after it was ready. */
  onFailure(listener: (err: Error) => void): void;
}

/** A module next to `base` by name, with `base`'s extension: `.ts` from source, `.js` once built. */
export function siblingModule(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/** Starts `file` in a worker thread with `workerData`; resolves once it is ready. */
export async function startWorker<T>(
  file: URL,
  name: string,
  workerData: unknown,
): Promise<RunningWorker<T>> {
  const worker = new Worker(file, { name, workerData });
  const exited = once(worker, 'exit').then(([code]) => code as number);
  const ready = await new Promise<T>((resolve, reject) => {
    worker.once('message', (message: ToMain<T>) => {
      if (message.type === 'ready') resolve(message.value);
      else reject(new Error(`${name}: ${message.message}`));
    });
    worker.once('error', reject);
    void exited.then((code) => reject(new Error(`${name} ended with code ${code} before it was ready`)));
  });
  let stopping = false;
  return {
    ready,
    exited,
    async stop() {
      stopping = true;
      worker.postMessage({ type: 'stop' } satisfies ToWorker);
      await exited;
    },
    onFailure(listener) {
      worker.on('error', listener);
      void exited.then((code) => {
        if (!stopping) listener(new Error(`${name} ended unexpectedly with code ${code}`));
      });
    },
  };
}

/**
 * The worker side: runs `start`, reports ready, and on `stop` runs the returned stop and ends the
 * thread. What cannot start is reported as `failed`.
 */
export async function serveInWorker<T>(
  start: () => Promise<{ value: T; stop: () => Promise<void> }>,
): Promise<void> {
  if (isMainThread || !parentPort) throw new Error('serveInWorker runs in a worker thread');
  const port = parentPort;
  let running: { value: T; stop: () => Promise<void> };
  try {
    running = await start();
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies ToMain<T>);
    return;
  }
  port.once('message', (message: ToWorker) => {
    if (message.type !== 'stop') return;
    void running.stop().finally(() => {
      port.close();
      // Anything left holding the loop (a client's idle socket) must not keep the thread alive.
      setTimeout(() => process.exit(0), 1_000).unref();
    });
  });
  port.postMessage({ type: 'ready', value: running.value } satisfies ToMain<T>);
}
