import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from './config.ts';

/** An emulator accepts any credentials; on AWS the SDK's default chain (IRSA web identity) applies. */
const endpointOptions = (aws: Config['aws']) =>
  aws.endpointUrl
    ? { endpoint: aws.endpointUrl, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
    : {};

/** SNS for the API: a publish that cannot finish quickly becomes a 503 the client retries. */
export function createSnsClient(aws: Config['aws']): SNSClient {
  return new SNSClient({
    region: aws.region,
    ...endpointOptions(aws),
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1_000, requestTimeout: 3_000 }),
  });
}

/** SQS for the consumer: the request timeout must outlast the long poll. */
export function createSqsClient(aws: Config['aws'], waitTimeSec: number): SQSClient {
  return new SQSClient({
    region: aws.region,
    ...endpointOptions(aws),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 2_000,
      requestTimeout: (waitTimeSec + 5) * 1_000,
    }),
  });
}
