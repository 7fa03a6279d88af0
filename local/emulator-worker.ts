/** The SNS/SQS emulator in a worker thread of its own (see worker-thread.ts). */
import { startLocalMessaging } from './emulator.ts';
import { serveInWorker } from './worker-thread.ts';

await serveInWorker(async () => {
  const { stop, ...value } = await startLocalMessaging();
  return { value, stop };
});
