/**
 * The SNS/SQS emulator in a process of its own, so its CPU is its own (and measurable) instead of
 * sharing the load generator's event loop. Prints one JSON line with the resources once ready.
 */
import { startLocalMessaging } from '../../local/emulator.ts';

const messaging = await startLocalMessaging();
const { endpoint, region, topicArn, queueUrl, dlqUrl } = messaging;
process.stdout.write(
  `${JSON.stringify({ msg: 'emulator ready', endpoint, region, topicArn, queueUrl, dlqUrl })}\n`,
);
process.once('SIGTERM', () => {
  void messaging.stop().finally(() => process.exit(0));
});
