import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { policyDocument } from '../policy.ts';
import { apiRoutes } from './edge.ts';
import { queueSettings } from './messaging.ts';

/** SLOs of DESIGN.md the thresholds below derive from. */
export const slo = {
  /** 99.9 % of API requests answer without a 5xx: 0.1 % error budget over 28 days. */
  availability: 0.999,
  /** p99 server latency of POST /v1/events, ms. */
  postLatencyMs: 200,
  /** p99 server latency of GET routes, ms. */
  getLatencyMs: 300,
  /** 99 % of accepted events queryable within this many seconds. */
  freshnessSec: 5,
};

/** Who an alarm wakes: `page` goes to the on-call pager, `ticket` to the team's queue (docs/slo.md). */
export type Severity = 'page' | 'ticket';

/**
 * Multi-window multi-burn-rate alerting (Google SRE workbook), as docs/slo.md sets it: a 28-day
 * budget burnt 14.4x as fast as allowed is 2 % of it per hour, 6x is 5 % per 6 hours; both page.
 * Each fires only while a short window (1/12 of the long one) burns too, so it resets soon after the
 * errors stop.
 */
export const burnRates = [
  { name: 'fast', factor: 14.4, longWindowSec: 3600, shortWindowSec: 300, severity: 'page' as Severity },
  { name: 'slow', factor: 6, longWindowSec: 6 * 3600, shortWindowSec: 1800, severity: 'page' as Severity },
];

/**
 * Severity of each notifying alarm: a page when users are hurt now or events are at risk (the
 * durability promise, a stopped pipeline, no API target), a ticket for what can wait for working hours.
 */
export const alarmSeverity: Record<string, Severity> = {
  'queue-oldest-message-age': 'page',
  'dlq-messages-visible': 'ticket',
  'subscription-dlq-messages-visible': 'page',
  'db-cpu-high': 'ticket',
  'db-free-storage-low': 'page',
  'db-connections-high': 'ticket',
  'api-5xx-fast-burn': 'page',
  'api-5xx-slow-burn': 'page',
  'nlb-healthy-hosts-low': 'page',
};

/** Latency alarms per route are tickets: the Prometheus latency burn-rate alerts page first. */
export const latencyAlarmSeverity: Severity = 'ticket';

/** 5xx share (percent) above which the error budget burns `factor` times too fast. */
export function errorRateThresholdPercent(factor: number): number {
  return Number((factor * (1 - slo.availability) * 100).toFixed(4));
}

/**
 * Freshness backstop on the queue: SQS reports only the age of the oldest message, whole seconds per
 * minute, so it cannot measure the 99th percentile the SLO speaks of (the chart's Prometheus rules do,
 * from ingesta_event_freshness_seconds). A healthy consumer long-polls and takes a message within a
 * second; a message older than one visibility timeout (60 s, 12x the 5 s objective) has waited
 * through a failed attempt or found no consumer, so every event behind it misses the objective.
 * Five minutes in a row rules out one slow retry.
 */
export const queueAgeAlarm = {
  thresholdSec: queueSettings.visibilityTimeoutSec,
  periodSec: 60,
  evaluationPeriods: 5,
};

export interface AlarmsArgs {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  /** Endpoints paged: e-mail addresses or https:// URLs (a pager's CloudWatch integration). */
  pageSubscriptions: string[];
  /** Endpoints that get tickets: e-mail addresses or https:// URLs. */
  ticketSubscriptions: string[];
  queueName: pulumi.Input<string>;
  dlqName: pulumi.Input<string>;
  subscriptionDlqName: pulumi.Input<string>;
  dbIdentifier: pulumi.Input<string>;
  dbAllocatedStorageGb: number;
  dbMaxConnections: number;
  apiId: pulumi.Input<string>;
  stageName: string;
  /** ARN suffixes of the API's NLB and its target group, for the healthy-host alarm. */
  loadBalancerArnSuffix: pulumi.Input<string>;
  targetGroupArnSuffix: pulumi.Input<string>;
}

/** Runbook of an alarm: named after its stack-independent name. */
export function runbookPath(alarmName: string): string {
  return `docs/runbooks/${alarmName}.md`;
}

/**
 * CloudWatch alarms on the AWS side of the pipeline (an independent backstop to the in-cluster
 * Prometheus alerts: they fire even when the cluster's monitoring is down), notifying an encrypted
 * SNS topic, and a dashboard of the same metrics. Alarm names are `<prefix>-<name>`; each
 * description names its runbook `docs/runbooks/<name>.md`.
 */
export class Alarms extends pulumi.ComponentResource {
  /** The alarm topics by severity: subscribe the pager to `page`, the team's queue to `ticket`. */
  readonly topicArns: Record<Severity, pulumi.Output<string>>;
  /** Names of the alarms that notify (metric alarms and composite burn-rate alarms). */
  readonly alarmNames: pulumi.Output<string>[];
  readonly dashboardName: pulumi.Output<string>;

  constructor(name: string, args: AlarmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:alarms:Alarms', name, {}, opts);
    const parent = { parent: this };

    const key = new aws.kms.Key(
      `${name}-topic`,
      {
        description: `${args.prefix}: alarm notifications`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: policyDocument([
          {
            Sid: 'AccountAdministersKeyThroughIam',
            Effect: 'Allow',
            Principal: { AWS: pulumi.interpolate`arn:aws:iam::${args.accountId}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          {
            Sid: 'CloudWatchPublishesAlarms',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
          },
        ]),
      },
      parent,
    );
    // One topic per severity: the page topic goes to the pager, the ticket topic to the team's queue.
    const topics = Object.fromEntries(
      (['page', 'ticket'] as const).map((severity) => {
        const topic = new aws.sns.Topic(
          `${name}-${severity}-topic`,
          { name: `${args.prefix}-alarms-${severity}`, kmsMasterKeyId: key.arn },
          parent,
        );
        const endpoints = severity === 'page' ? args.pageSubscriptions : args.ticketSubscriptions;
        endpoints.forEach((endpoint, i) => {
          new aws.sns.TopicSubscription(
            `${name}-${severity}-${i}`,
            {
              topic: topic.arn,
              protocol: endpoint.startsWith('https://') ? 'https' : 'email',
              endpoint,
            },
            parent,
          );
        });
        return [severity, topic];
      }),
    ) as Record<Severity, aws.sns.Topic>;

    const notifying: aws.cloudwatch.MetricAlarm[] = [];
    const composites: aws.cloudwatch.CompositeAlarm[] = [];
    const actionsOf = (severity: Severity) => ({
      alarmActions: [topics[severity].arn],
      okActions: [topics[severity].arn],
    });
    const severityOf = (alarmName: string): Severity =>
      alarmSeverity[alarmName] ?? (alarmName.startsWith('api-latency-') ? latencyAlarmSeverity : 'ticket');
    const metricAlarm = (
      alarmName: string,
      description: string,
      alarm: Omit<aws.cloudwatch.MetricAlarmArgs, 'name' | 'alarmDescription'>,
      runbookOf = alarmName,
    ) => {
      // Only a notifying alarm notifies; a burn-rate window notifies through its composite.
      const actions = runbookOf === alarmName ? actionsOf(severityOf(alarmName)) : {};
      const resource = new aws.cloudwatch.MetricAlarm(
        `${name}-${alarmName}`,
        {
          name: `${args.prefix}-${alarmName}`,
          alarmDescription: `${description} Runbook: ${runbookPath(runbookOf)}`,
          ...alarm,
          ...actions,
        },
        parent,
      );
      if (runbookOf === alarmName) notifying.push(resource);
      return resource;
    };

    metricAlarm(
      'queue-oldest-message-age',
      `Freshness (SLO ${slo.freshnessSec} s): the oldest message of the events queue has waited more than one visibility timeout for ${queueAgeAlarm.evaluationPeriods} minutes.`,
      {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateAgeOfOldestMessage',
        dimensions: { QueueName: args.queueName },
        statistic: 'Maximum',
        period: queueAgeAlarm.periodSec,
        evaluationPeriods: queueAgeAlarm.evaluationPeriods,
        datapointsToAlarm: queueAgeAlarm.evaluationPeriods,
        threshold: queueAgeAlarm.thresholdSec,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      },
    );
    for (const [alarmName, queueName, what] of [
      ['dlq-messages-visible', args.dlqName, 'the events DLQ (poison messages the consumer gave up on)'],
      [
        'subscription-dlq-messages-visible',
        args.subscriptionDlqName,
        'the subscription DLQ (events SNS could not deliver to the queue)',
      ],
    ] as const) {
      metricAlarm(alarmName, `Durability: messages are waiting in ${what}.`, {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: queueName },
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      });
    }

    const db = { namespace: 'AWS/RDS', dimensions: { DBInstanceIdentifier: args.dbIdentifier } };
    metricAlarm('db-cpu-high', 'PostgreSQL CPU above 80 % for 15 minutes.', {
      ...db,
      metricName: 'CPUUtilization',
      statistic: 'Average',
      period: 300,
      evaluationPeriods: 3,
      threshold: 80,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'breaching',
    });
    metricAlarm(
      'db-free-storage-low',
      `PostgreSQL free storage below 10 % of the ${args.dbAllocatedStorageGb} GiB allocated (storage autoscaling may be exhausted).`,
      {
        ...db,
        metricName: 'FreeStorageSpace',
        statistic: 'Minimum',
        period: 300,
        evaluationPeriods: 2,
        threshold: Math.round(args.dbAllocatedStorageGb * 1024 ** 3 * 0.1),
        comparisonOperator: 'LessThanThreshold',
        treatMissingData: 'breaching',
      },
    );
    metricAlarm(
      'db-connections-high',
      `PostgreSQL connections above 80 % of max_connections (${args.dbMaxConnections}) for 10 minutes: pool sizes times replicas outgrow the instance.`,
      {
        ...db,
        metricName: 'DatabaseConnections',
        statistic: 'Maximum',
        period: 300,
        evaluationPeriods: 2,
        threshold: Math.floor(args.dbMaxConnections * 0.8),
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'breaching',
      },
    );

    // API Gateway reaches the pods only through the NLB: no healthy target, every request a 503,
    // whether or not the cluster's own monitoring still runs.
    metricAlarm(
      'nlb-healthy-hosts-low',
      'No healthy API pod behind the internal NLB for 2 minutes: API Gateway answers every request with 503.',
      {
        namespace: 'AWS/NetworkELB',
        metricName: 'HealthyHostCount',
        dimensions: { LoadBalancer: args.loadBalancerArnSuffix, TargetGroup: args.targetGroupArnSuffix },
        statistic: 'Minimum',
        period: 60,
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        threshold: 1,
        comparisonOperator: 'LessThanThreshold',
        treatMissingData: 'breaching',
      },
    );

    const stage = { ApiId: args.apiId, Stage: args.stageName };
    for (const rate of burnRates) {
      const compositeName = `api-5xx-${rate.name}-burn`;
      const threshold = errorRateThresholdPercent(rate.factor);
      const windows = [
        ['long', rate.longWindowSec],
        ['short', rate.shortWindowSec],
      ] as const;
      const children = windows.map(([windowName, periodSec]) =>
        metricAlarm(
          `${compositeName}-${windowName}-window`,
          `API 5xx share above ${threshold} % over ${periodSec / 60} minutes (${rate.factor}x the error budget of availability ${slo.availability * 100} %). Notifies through ${args.prefix}-${compositeName}.`,
          {
            evaluationPeriods: 1,
            threshold,
            comparisonOperator: 'GreaterThanThreshold',
            treatMissingData: 'notBreaching',
            metricQueries: [
              {
                id: 'errors',
                metric: {
                  namespace: 'AWS/ApiGateway',
                  metricName: '5xx',
                  dimensions: stage,
                  stat: 'Sum',
                  period: periodSec,
                },
              },
              {
                id: 'requests',
                metric: {
                  namespace: 'AWS/ApiGateway',
                  metricName: 'Count',
                  dimensions: stage,
                  stat: 'Sum',
                  period: periodSec,
                },
              },
              {
                id: 'errorRate',
                expression: 'IF(requests > 0, 100 * errors / requests, 0)',
                label: '5xx share (%)',
                returnData: true,
              },
            ],
          },
          compositeName,
        ),
      );
      composites.push(
        new aws.cloudwatch.CompositeAlarm(
          `${name}-${compositeName}`,
          {
            alarmName: `${args.prefix}-${compositeName}`,
            alarmDescription: `Availability SLO ${slo.availability * 100} %: the API burns its 5xx error budget ${rate.factor}x too fast over ${rate.longWindowSec / 3600} h and still does over the last ${rate.shortWindowSec / 60} minutes. Runbook: ${runbookPath(compositeName)}`,
            alarmRule: pulumi.interpolate`ALARM("${children[0]!.name}") AND ALARM("${children[1]!.name}")`,
            ...actionsOf(rate.severity),
          },
          parent,
        ),
      );
    }

    for (const route of apiRoutes) {
      const [method, resource] = route.routeKey.split(' ') as [string, string];
      const objectiveMs = method === 'POST' ? slo.postLatencyMs : slo.getLatencyMs;
      const alarmName = `api-latency-${method.toLowerCase()}-${resource
        .replace(/[{}]/g, '')
        .replace(/^\/v1\//, '')
        .replace(/\//g, '-')}`;
      metricAlarm(
        alarmName,
        `Latency SLO: p99 of ${route.routeKey} at the backend (IntegrationLatency) above ${objectiveMs} ms for 15 minutes.`,
        {
          namespace: 'AWS/ApiGateway',
          metricName: 'IntegrationLatency',
          dimensions: { ...stage, Method: method, Resource: resource },
          extendedStatistic: 'p99',
          evaluateLowSampleCountPercentiles: 'ignore',
          period: 300,
          evaluationPeriods: 3,
          datapointsToAlarm: 3,
          threshold: objectiveMs,
          comparisonOperator: 'GreaterThanThreshold',
          treatMissingData: 'notBreaching',
        },
      );
    }

    const alarmArns = [...notifying.map((alarm) => alarm.arn), ...composites.map((alarm) => alarm.arn)];
    const dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: args.prefix,
        dashboardBody: pulumi
          .all([
            args.queueName,
            args.dlqName,
            args.subscriptionDlqName,
            args.dbIdentifier,
            args.apiId,
            pulumi.all(alarmArns),
          ])
          .apply(([queueName, dlqName, subscriptionDlqName, dbIdentifier, apiId, arns]) =>
            JSON.stringify(
              dashboardBody({
                region: args.region,
                stageName: args.stageName,
                queueName,
                dlqName,
                subscriptionDlqName,
                dbIdentifier,
                apiId,
                arns,
              }),
            ),
          ),
      },
      parent,
    );

    this.topicArns = { page: topics.page.arn, ticket: topics.ticket.arn };
    this.alarmNames = [
      ...notifying.map((alarm) => alarm.name),
      ...composites.map((alarm) => alarm.alarmName),
    ];
    this.dashboardName = dashboard.dashboardName;
    this.registerOutputs({ topicArns: this.topicArns, alarmNames: this.alarmNames });
  }
}

function dashboardBody(args: {
  region: string;
  stageName: string;
  queueName: string;
  dlqName: string;
  subscriptionDlqName: string;
  dbIdentifier: string;
  apiId: string;
  arns: string[];
}): { widgets: object[] } {
  const widget = (title: string, metrics: unknown[][], extra: object = {}) => ({
    type: 'metric',
    width: 12,
    height: 6,
    properties: { title, region: args.region, view: 'timeSeries', metrics, period: 60, ...extra },
  });
  const api = ['ApiId', args.apiId, 'Stage', args.stageName];
  return {
    widgets: [
      {
        type: 'alarm',
        width: 24,
        height: 4,
        properties: { title: 'Alarms', alarms: args.arns },
      },
      widget('API requests and 5xx', [
        ['AWS/ApiGateway', 'Count', ...api, { stat: 'Sum' }],
        ['AWS/ApiGateway', '5xx', ...api, { stat: 'Sum' }],
        ['AWS/ApiGateway', '4xx', ...api, { stat: 'Sum' }],
      ]),
      widget(
        'API p99 integration latency per route (ms)',
        apiRoutes.map((route) => {
          const [method, resource] = route.routeKey.split(' ');
          return [
            'AWS/ApiGateway',
            'IntegrationLatency',
            ...api,
            'Method',
            method,
            'Resource',
            resource,
            { stat: 'p99', label: route.routeKey },
          ];
        }),
        { annotations: { horizontal: [{ value: slo.postLatencyMs }, { value: slo.getLatencyMs }] } },
      ),
      widget(
        'Queue: oldest message age (s)',
        [['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', args.queueName, { stat: 'Maximum' }]],
        { annotations: { horizontal: [{ value: queueAgeAlarm.thresholdSec, label: 'alarm' }] } },
      ),
      widget('Queues: visible messages', [
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', args.queueName, { stat: 'Maximum' }],
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', args.dlqName, { stat: 'Maximum' }],
        [
          'AWS/SQS',
          'ApproximateNumberOfMessagesVisible',
          'QueueName',
          args.subscriptionDlqName,
          { stat: 'Maximum' },
        ],
      ]),
      widget('PostgreSQL CPU (%) and connections', [
        ['AWS/RDS', 'CPUUtilization', 'DBInstanceIdentifier', args.dbIdentifier, { stat: 'Average' }],
        [
          'AWS/RDS',
          'DatabaseConnections',
          'DBInstanceIdentifier',
          args.dbIdentifier,
          { stat: 'Maximum', yAxis: 'right' },
        ],
      ]),
      widget('PostgreSQL free storage (bytes)', [
        ['AWS/RDS', 'FreeStorageSpace', 'DBInstanceIdentifier', args.dbIdentifier, { stat: 'Minimum' }],
      ]),
    ],
  };
}
