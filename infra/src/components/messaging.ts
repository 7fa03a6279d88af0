import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { policyDocument } from '../policy.ts';

/**
 * Queue settings derived from the consumer's own (CONSUMER_VISIBILITY_TIMEOUT_SEC=60,
 * CONSUMER_WAIT_TIME_SEC=20, chart values consumer.visibilityTimeoutSec/waitTimeSec): the queue
 * defaults match what the consumer asks for on each receive, so a message received by any other
 * client (a redrive tool, the console) behaves the same.
 */
export const queueSettings = {
  visibilityTimeoutSec: 60,
  receiveWaitTimeSec: 20,
  /** A message is moved to the DLQ on its fifth failed receive. */
  maxReceiveCount: 5,
  messageRetentionSec: 4 * 24 * 3600,
  /**
   * 14 days, the SQS maximum. A DLQ must keep messages longer than the source queue: SQS keeps a
   * message's original enqueue time when it moves it, so the DLQ's retention counts from then.
   */
  deadLetterRetentionSec: 14 * 24 * 3600,
  kmsDataKeyReusePeriodSec: 300,
};

export interface MessagingArgs {
  prefix: string;
  accountId: pulumi.Input<string>;
}

/**
 * SNS topic -> SQS queue with raw message delivery. The queue has a DLQ (maxReceiveCount 5); the
 * subscription has its own DLQ for deliveries SNS cannot make (for example a broken key policy).
 * The queues are encrypted with a customer managed key whose policy lets SNS use it only on behalf
 * of this topic; the topic is encrypted with the AWS managed SNS key, so publishers need nothing
 * but sns:Publish.
 */
export class Messaging extends pulumi.ComponentResource {
  readonly topicArn: pulumi.Output<string>;
  readonly topicName: pulumi.Output<string>;
  readonly queueArn: pulumi.Output<string>;
  readonly queueUrl: pulumi.Output<string>;
  readonly queueName: pulumi.Output<string>;
  readonly dlqArn: pulumi.Output<string>;
  readonly dlqUrl: pulumi.Output<string>;
  readonly dlqName: pulumi.Output<string>;
  readonly subscriptionDlqArn: pulumi.Output<string>;
  readonly subscriptionDlqName: pulumi.Output<string>;
  readonly queueKeyArn: pulumi.Output<string>;

  constructor(name: string, args: MessagingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:messaging:Messaging', name, {}, opts);
    const parent = { parent: this };

    const topic = new aws.sns.Topic(
      `${name}-events`,
      { name: `${args.prefix}-events`, kmsMasterKeyId: 'alias/aws/sns' },
      parent,
    );

    const queueKey = new aws.kms.Key(
      `${name}-queues`,
      {
        description: `${args.prefix}: SQS queues of the event pipeline`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        // In a key policy "*" means this key; the statements narrow who may use it.
        policy: policyDocument([
          {
            Sid: 'AccountAdministersKeyThroughIam',
            Effect: 'Allow',
            Principal: { AWS: pulumi.interpolate`arn:aws:iam::${args.accountId}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          {
            Sid: 'SnsEncryptsForThisTopicOnly',
            Effect: 'Allow',
            Principal: { Service: 'sns.amazonaws.com' },
            Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
            Resource: '*',
            Condition: { ArnEquals: { 'aws:SourceArn': topic.arn } },
          },
        ]),
      },
      parent,
    );
    new aws.kms.Alias(
      `${name}-queues`,
      { name: `alias/${args.prefix}-queues`, targetKeyId: queueKey.keyId },
      parent,
    );

    const encryption = {
      kmsMasterKeyId: queueKey.arn,
      kmsDataKeyReusePeriodSeconds: queueSettings.kmsDataKeyReusePeriodSec,
    };

    const dlq = new aws.sqs.Queue(
      `${name}-events-dlq`,
      {
        name: `${args.prefix}-events-dlq`,
        messageRetentionSeconds: queueSettings.deadLetterRetentionSec,
        ...encryption,
      },
      parent,
    );

    const queue = new aws.sqs.Queue(
      `${name}-events`,
      {
        name: `${args.prefix}-events`,
        visibilityTimeoutSeconds: queueSettings.visibilityTimeoutSec,
        receiveWaitTimeSeconds: queueSettings.receiveWaitTimeSec,
        messageRetentionSeconds: queueSettings.messageRetentionSec,
        redrivePolicy: pulumi.jsonStringify({
          deadLetterTargetArn: dlq.arn,
          maxReceiveCount: queueSettings.maxReceiveCount,
        }),
        ...encryption,
      },
      parent,
    );

    // Only the events queue may move messages into the DLQ.
    new aws.sqs.RedriveAllowPolicy(
      `${name}-events-dlq`,
      {
        queueUrl: dlq.url,
        redriveAllowPolicy: pulumi.jsonStringify({
          redrivePermission: 'byQueue',
          sourceQueueArns: [queue.arn],
        }),
      },
      parent,
    );

    const subscriptionDlq = new aws.sqs.Queue(
      `${name}-subscription-dlq`,
      {
        name: `${args.prefix}-events-subscription-dlq`,
        messageRetentionSeconds: queueSettings.deadLetterRetentionSec,
        ...encryption,
      },
      parent,
    );

    for (const [policyName, target] of [
      ['events', queue],
      ['subscription-dlq', subscriptionDlq],
    ] as const) {
      new aws.sqs.QueuePolicy(
        `${name}-${policyName}`,
        {
          queueUrl: target.url,
          policy: policyDocument([
            {
              Sid: 'TopicDeliversHere',
              Effect: 'Allow',
              Principal: { Service: 'sns.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: target.arn,
              Condition: { ArnEquals: { 'aws:SourceArn': topic.arn } },
            },
            {
              Sid: 'DenyPlaintextTransport',
              Effect: 'Deny',
              Principal: '*',
              Action: 'sqs:*',
              Resource: target.arn,
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            },
          ]),
        },
        parent,
      );
    }

    new aws.sns.TopicSubscription(
      `${name}-events`,
      {
        topic: topic.arn,
        protocol: 'sqs',
        endpoint: queue.arn,
        // Raw delivery: the SQS body is the CloudEvent itself and SNS message attributes (trace
        // context) arrive as SQS message attributes.
        rawMessageDelivery: true,
        redrivePolicy: pulumi.jsonStringify({ deadLetterTargetArn: subscriptionDlq.arn }),
      },
      parent,
    );

    this.topicArn = topic.arn;
    this.topicName = topic.name;
    this.queueArn = queue.arn;
    this.queueUrl = queue.url;
    this.queueName = queue.name;
    this.dlqArn = dlq.arn;
    this.dlqUrl = dlq.url;
    this.dlqName = dlq.name;
    this.subscriptionDlqArn = subscriptionDlq.arn;
    this.subscriptionDlqName = subscriptionDlq.name;
    this.queueKeyArn = queueKey.arn;
    this.registerOutputs({ topicArn: this.topicArn, queueUrl: this.queueUrl, dlqUrl: this.dlqUrl });
  }
}
