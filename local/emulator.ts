import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';

export interface MessagingResources {
  topicArn: string;
  queueUrl: string;
  dlqUrl: string;
}

export interface LocalMessaging extends MessagingResources {
  endpoint: string;
  region: string;
  stop(): Promise<void>;
}

/** Mirrors infra/: visibility above the consumer's worst batch, DLQ after 5 receives, 14-day DLQ retention. */
export const queueSettings = {
  visibilityTimeoutSec: 60,
  maxReceiveCount: 5,
  dlqRetentionSec: 14 * 24 * 3600,
};

/**
 * Creates the topic, queue, DLQ and raw-delivery subscription through the AWS API, exactly the calls
 * one would make against AWS. Idempotent, as the AWS Create* calls are.
 */
export async function createMessagingResources(
  endpoint: string,
  region: string,
  names = { topic: 'ingesta-events', queue: 'ingesta-events', dlq: 'ingesta-events-dlq' },
): Promise<MessagingResources> {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const sqs = new SQSClient({ endpoint, region, credentials });
  const sns = new SNSClient({ endpoint, region, credentials });
  try {
    const { QueueUrl: dlqUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: names.dlq,
        Attributes: { MessageRetentionPeriod: String(queueSettings.dlqRetentionSec) },
      }),
    );
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    );
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: names.queue,
        Attributes: {
          VisibilityTimeout: String(queueSettings.visibilityTimeoutSec),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: Attributes?.QueueArn,
            maxReceiveCount: queueSettings.maxReceiveCount,
          }),
        },
      }),
    );
    const queueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    const { TopicArn: topicArn } = await sns.send(new CreateTopicCommand({ Name: names.topic }));
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    if (!topicArn || !queueUrl || !dlqUrl) throw new Error('emulator did not return resource identifiers');
    return { topicArn, queueUrl, dlqUrl };
  } finally {
    sqs.destroy();
    sns.destroy();
  }
}

/** Starts the in-process SNS/SQS emulator on loopback only and creates ingesta's resources. */
export async function startLocalMessaging(
  options: { port?: number; region?: string } = {},
): Promise<LocalMessaging> {
  const region = options.region ?? 'us-east-1';
  const app = buildApp({ logger: false, defaultRegion: region });
  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  const resources = await createMessagingResources(endpoint, region);
  return { endpoint, region, ...resources, stop: () => app.close() };
}
