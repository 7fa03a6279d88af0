import type { MessagingResources } from './emulator.ts';

export interface BannerInput {
  apiUrl: string;
  adminPorts: { api: number; consumer: number };
  authOn: boolean;
  postgres: { url: string; persistent: boolean; dataDir: string };
  queues: MessagingResources & { endpoint: string; region: string };
}

/** The shell command the DLQ tool runs with, environment included, for a shell that has nothing set. */
export function dlqCommand(queues: BannerInput['queues']): string {
  return (
    `AWS_ENDPOINT_URL=${queues.endpoint} AWS_REGION=${queues.region} ` +
    `INGEST_QUEUE_URL=${queues.queueUrl} INGEST_DLQ_URL=${queues.dlqUrl} npm run dlq -- list`
  );
}

/**
 * What `npm start` prints once everything is up: where each part listens and ready-to-paste
 * commands for the API and the DLQ tool.
 */
export function localBanner({ apiUrl, adminPorts, authOn, postgres, queues }: BannerInput): string {
  const example = JSON.stringify({
    specversion: '1.0',
    id: 'order-1001',
    source: '/shop/web',
    type: 'order.created',
    subject: 'user-42',
    data: { productId: 'p-7', quantity: 2 },
  });
  const data = postgres.persistent
    ? `kept in ${postgres.dataDir}`
    : 'temporary, removed at exit (keep it: npm start -- --data-dir DIR)';
  return `
  ingesta is running (local mode: embedded PostgreSQL; the SNS/SQS emulator and the consumer in worker threads).

${
  authOn
    ? '  Authentication is on (AUTH_* set): send a bearer token with each request.'
    : '  !! Authentication is OFF in local mode. Never expose this process. !!'
}

  API          ${apiUrl}   (OpenAPI ${apiUrl}/openapi.json, reference ${apiUrl}/docs)
  Admin        http://localhost:${adminPorts.api} (api), http://localhost:${adminPorts.consumer} (consumer): /metrics /livez /readyz
  PostgreSQL   ${postgres.url}
               data ${data}
  SNS/SQS      emulator ${queues.endpoint} (region ${queues.region})
    topic      ${queues.topicArn}
    queue      ${queues.queueUrl}
    DLQ        ${queues.dlqUrl}

  Send an event:
    curl -i -X POST ${apiUrl}/v1/events -H 'content-type: application/cloudevents+json' \\
      -d '${example}'

  Read it back:
    curl '${apiUrl}/v1/events?type=order.created&subject=user-42'

  Dead-letter queue (the tool finds this stack by itself):
    npm run dlq -- list
  From a shell elsewhere, with the environment set:
    ${dlqCommand(queues)}

  Ctrl-C stops everything.
`;
}
