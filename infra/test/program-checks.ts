// Checks every stack must pass, resource by resource. Each stack's test file runs the program
// under Pulumi's mocks in its own process and calls checkProgram with what it recorded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { outputsToValues } from '../scripts/outputs-to-values.ts';
import { alarmSeverity, burnRates, latencyAlarmSeverity } from '../src/components/alarms.ts';
import { deployerApiGroups, deployersGroup } from '../src/components/cluster.ts';
import { derivedPassword } from '../src/components/database.ts';
import {
  accountId,
  asList,
  grants,
  type Json,
  masterPassword,
  type ProgramRun,
  type RecordedResource,
  Resources,
  region,
  statementsOf,
} from './harness.ts';

const nodeSecurityGroupId = 'sg-0eksclustersg';
/** Key under which Pulumi's wire format marks a value as secret. */
const pulumiSecretSignature = '4dabf18193072939515e22adb298388d';
const oidcIssuer = `oidc.eks.${region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE`;

/**
 * Actions AWS authorizes only on Resource "*" (no resource-level permissions). A statement may
 * name "*" only when all its actions are here; everything else must name ARNs.
 */
const actionsWithoutResourceLevelPermissions = new Set([
  'ecr:GetAuthorizationToken',
  'elasticloadbalancing:DescribeLoadBalancers',
  'elasticloadbalancing:DescribeListeners',
  'elasticloadbalancing:DescribeTargetGroups',
  'elasticloadbalancing:DescribeTargetGroupAttributes',
  'elasticloadbalancing:DescribeTargetHealth',
  'elasticloadbalancing:DescribeTags',
  'ec2:DescribeInstances',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSecurityGroups',
  'ec2:DescribeSubnets',
  'ec2:DescribeVpcs',
  'ec2:DescribeAvailabilityZones',
  'ec2:DescribeImages',
  'ec2:DescribeInstanceTypeOfferings',
  'ec2:DescribeInstanceTypes',
  'ec2:DescribeLaunchTemplates',
  'ec2:DescribeSpotPriceHistory',
  'pricing:GetProducts',
]);

export interface StackExpectations {
  stack: 'dev' | 'prod';
  /** Stack config file as written, to compare the program's choices with. */
  config: Record<string, Json>;
}

export function readStackFile(stack: string): Record<string, Json> {
  return (
    parse(readFileSync(new URL(`../Pulumi.${stack}.yaml`, import.meta.url), 'utf8')) as { config: object }
  ).config;
}

function parseJson(value: unknown): Json {
  assert.equal(typeof value, 'string', 'expected a JSON document');
  return JSON.parse(value as string);
}

export function checkProgram(run: ProgramRun, expected: StackExpectations): void {
  const resources = new Resources(run.resources);
  const prefix = `ingesta-${expected.stack}`;
  const arn = (service: string, resource: string) => `arn:aws:${service}:${region}:${accountId}:${resource}`;
  const topicArn = arn('sns', `${prefix}-events`);
  const queueArn = arn('sqs', `${prefix}-events`);
  const dlqArn = arn('sqs', `${prefix}-events-dlq`);
  const subscriptionDlqArn = arn('sqs', `${prefix}-events-subscription-dlq`);
  const queueKeyArn = arn('kms', 'key/messaging-queues');
  const databaseKeyArn = arn('kms', 'key/database-data');
  const targetGroupArn = arn('elasticloadbalancing', `targetgroup/${prefix}-api/0123456789abcdef`);
  const edgeConfig = expected.config['ingesta:edge'];
  const clusterConfig = expected.config['ingesta:cluster'];

  const rolePolicy = (name: string) =>
    resources.one('aws:iam/rolePolicy:RolePolicy', name).inputs.policy as string;
  const trustOf = (name: string) =>
    statementsOf(resources.one('aws:iam/role:Role', name).inputs.assumeRolePolicy);

  describe(`${expected.stack} stack: encryption`, () => {
    test('when queues are created, then every one is encrypted with the messaging key', () => {
      const queues = resources
        .ofType('aws:sqs/queue:Queue')
        .filter((queue) => queue.name.startsWith('messaging-'));
      assert.equal(queues.length, 3);
      for (const queue of queues) assert.equal(queue.inputs.kmsMasterKeyId, queueKeyArn, queue.name);
    });

    test('when topics are created, then every one is encrypted with KMS', () => {
      const topics = resources.ofType('aws:sns/topic:Topic');
      assert.deepEqual(
        topics.map((topic) => [topic.name, topic.inputs.kmsMasterKeyId]),
        [
          ['messaging-events', 'alias/aws/sns'],
          ['alarms-page-topic', arn('kms', 'key/alarms-topic')],
          ['alarms-ticket-topic', arn('kms', 'key/alarms-topic')],
        ],
      );
    });

    test('when KMS keys are created, then each rotates and its policy delegates only to this account', () => {
      const keys = resources.ofType('aws:kms/key:Key');
      assert.deepEqual(keys.map((key) => key.name).sort(), [
        'alarms-topic',
        'cluster-secrets',
        'database-data',
        'edge-logs',
        'messaging-queues',
      ]);
      for (const key of keys) {
        assert.equal(key.inputs.enableKeyRotation, true, key.name);
        const [admin] = statementsOf(key.inputs.policy);
        assert.deepEqual(admin?.Principal, { AWS: `arn:aws:iam::${accountId}:root` }, key.name);
      }
    });

    test('when data stores are created, then storage, secrets, logs, images and node disks are encrypted', () => {
      const db = resources.one('aws:rds/instance:Instance', 'database-postgres').inputs;
      assert.equal(db.storageEncrypted, true);
      assert.equal(db.kmsKeyId, databaseKeyArn);
      assert.equal(db.masterUserSecretKmsKeyId, databaseKeyArn);
      assert.equal(
        resources.one('aws:secretsmanager/secret:Secret', 'database-url').inputs.kmsKeyId,
        databaseKeyArn,
      );
      assert.equal(
        resources.one('aws:cloudwatch/logGroup:LogGroup', 'edge-access-logs').inputs.kmsKeyId,
        arn('kms', 'key/edge-logs'),
      );
      assert.deepEqual(
        resources.one('aws:ecr/repository:Repository', 'registry').inputs.encryptionConfigurations,
        [{ encryptionType: 'KMS' }],
      );
      assert.equal(
        resources.one('eks:index:Cluster', 'cluster').inputs.encryptionConfigKeyArn,
        arn('kms', 'key/cluster-secrets'),
      );
      const [disk] = resources.one('aws:ec2/launchTemplate:LaunchTemplate', 'cluster-nodes').inputs
        .blockDeviceMappings;
      assert.equal(disk.ebs.encrypted, 'true');
    });

    test('when the log key is used by CloudWatch Logs, then only for this stack’s API log groups', () => {
      const [, logs] = statementsOf(resources.one('aws:kms/key:Key', 'edge-logs').inputs.policy);
      assert.deepEqual(logs?.Principal, { Service: `logs.${region}.amazonaws.com` });
      assert.deepEqual(logs?.Condition, {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': arn('logs', `log-group:/aws/apigateway/${prefix}*`),
        },
      });
    });
  });

  describe(`${expected.stack} stack: network`, () => {
    const subnets = resources.ofType('aws:ec2/subnet:Subnet');
    const tier = (name: string) => subnets.filter((subnet) => subnet.name.startsWith(`network-${name}-`));

    test('when subnets are created, then each tier spans the three configured zones', () => {
      const zones = expected.config['ingesta:network'].availabilityZones;
      for (const name of ['public', 'private', 'database']) {
        assert.deepEqual(
          tier(name).map((subnet) => subnet.inputs.availabilityZone),
          zones,
          name,
        );
      }
    });

    test('when private subnets are created, then they are tagged for internal load balancers and give no public IPs', () => {
      for (const subnet of tier('private')) {
        assert.equal(subnet.inputs.tags['kubernetes.io/role/internal-elb'], '1');
        assert.equal(subnet.inputs.mapPublicIpOnLaunch, false);
      }
    });

    test('when the database tier is routed, then it has no route out of the VPC', () => {
      const table = resources.one('aws:ec2/routeTable:RouteTable', 'network-database');
      assert.equal(table.inputs.routes, undefined);
      const associations = resources
        .ofType('aws:ec2/routeTableAssociation:RouteTableAssociation')
        .filter((association) => association.name.startsWith('network-database-'));
      assert.deepEqual(
        associations.map((association) => association.inputs.routeTableId),
        ['network-database-id', 'network-database-id', 'network-database-id'],
      );
    });

    test('when private route tables are created, then each sends 0.0.0.0/0 to a NAT gateway', () => {
      for (const table of resources
        .ofType('aws:ec2/routeTable:RouteTable')
        .filter((t) => t.name.includes('private'))) {
        assert.deepEqual(
          table.inputs.routes.map((route: Record<string, string>) => route.cidrBlock),
          ['0.0.0.0/0'],
        );
        assert.match(table.inputs.routes[0].natGatewayId, /^network-nat-\d-id$/);
      }
    });

    test('when AWS APIs are reached, then SQS, SNS, STS, ECR and CloudWatch have private interface endpoints', () => {
      const endpoints = resources.ofType('aws:ec2/vpcEndpoint:VpcEndpoint');
      const services = endpoints.map((endpoint) => endpoint.inputs.serviceName).sort();
      assert.deepEqual(
        services,
        ['ecr.api', 'ecr.dkr', 'logs', 'monitoring', 's3', 'sns', 'sqs', 'sts']
          .map((service) => `com.amazonaws.${region}.${service}`)
          .sort(),
      );
      for (const endpoint of endpoints.filter((e) => e.inputs.vpcEndpointType === 'Interface')) {
        assert.equal(endpoint.inputs.privateDnsEnabled, true);
        assert.deepEqual(endpoint.inputs.securityGroupIds, ['network-endpoints-id']);
      }
      const sg = resources.one('aws:ec2/securityGroup:SecurityGroup', 'network-endpoints').inputs;
      assert.deepEqual(
        sg.ingress.map((rule: Record<string, unknown>) => [
          rule.protocol,
          rule.fromPort,
          rule.toPort,
          rule.cidrBlocks,
        ]),
        [['tcp', 443, 443, [expected.config['ingesta:network'].vpcCidr]]],
      );
    });

    test('when the VPC is created, then its default security group is emptied', () => {
      const sg = resources.one(
        'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup',
        'network-default-sg',
      ).inputs;
      assert.equal(sg.ingress, undefined);
      assert.equal(sg.egress, undefined);
    });
  });

  describe(`${expected.stack} stack: messaging`, () => {
    const queue = resources.one('aws:sqs/queue:Queue', 'messaging-events').inputs;
    const chartValues = parse(
      readFileSync(new URL('../../charts/ingesta/values.yaml', import.meta.url), 'utf8'),
    );

    test('when the queue is created, then its timeouts match the consumer’s chart settings', () => {
      assert.equal(queue.visibilityTimeoutSeconds, chartValues.consumer.visibilityTimeoutSec);
      assert.equal(queue.receiveWaitTimeSeconds, chartValues.consumer.waitTimeSec);
      assert.equal(queue.visibilityTimeoutSeconds, 60);
      assert.equal(queue.receiveWaitTimeSeconds, 20);
      // A received message must stay hidden longer than a consumer takes to drain on shutdown.
      assert.ok(queue.visibilityTimeoutSeconds * 1000 > chartValues.consumer.shutdown.timeoutMs);
    });

    test('when a message fails five times, then SQS moves it to the DLQ, which keeps it 14 days', () => {
      assert.deepEqual(parseJson(queue.redrivePolicy), { deadLetterTargetArn: dlqArn, maxReceiveCount: 5 });
      const dlq = resources.one('aws:sqs/queue:Queue', 'messaging-events-dlq').inputs;
      assert.equal(dlq.messageRetentionSeconds, 14 * 24 * 3600);
      assert.ok(dlq.messageRetentionSeconds > queue.messageRetentionSeconds);
      const allow = resources.one(
        'aws:sqs/redriveAllowPolicy:RedriveAllowPolicy',
        'messaging-events-dlq',
      ).inputs;
      assert.deepEqual(parseJson(allow.redriveAllowPolicy), {
        redrivePermission: 'byQueue',
        sourceQueueArns: [queueArn],
      });
    });

    test('when the topic delivers, then raw delivery to the queue with its own subscription DLQ', () => {
      const subscription = resources.one(
        'aws:sns/topicSubscription:TopicSubscription',
        'messaging-events',
      ).inputs;
      assert.equal(subscription.topic, topicArn);
      assert.equal(subscription.protocol, 'sqs');
      assert.equal(subscription.endpoint, queueArn);
      assert.equal(subscription.rawMessageDelivery, true);
      assert.deepEqual(parseJson(subscription.redrivePolicy), { deadLetterTargetArn: subscriptionDlqArn });
      const subscriptionDlq = resources.one('aws:sqs/queue:Queue', 'messaging-subscription-dlq').inputs;
      assert.equal(subscriptionDlq.messageRetentionSeconds, 14 * 24 * 3600);
    });

    test('when SNS sends to a queue, then only on behalf of the ingest topic and only over TLS', () => {
      for (const [policyName, target] of [
        ['messaging-events', queueArn],
        ['messaging-subscription-dlq', subscriptionDlqArn],
      ]) {
        const statements = statementsOf(
          resources.one('aws:sqs/queuePolicy:QueuePolicy', policyName!).inputs.policy,
        );
        assert.deepEqual(statements, [
          {
            Sid: 'TopicDeliversHere',
            Effect: 'Allow',
            Principal: { Service: 'sns.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Resource: target,
            Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
          },
          {
            Sid: 'DenyPlaintextTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 'sqs:*',
            Resource: target,
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ]);
      }
    });

    test('when SNS encrypts into the queues, then the key lets it do so for the ingest topic only', () => {
      const statements = statementsOf(resources.one('aws:kms/key:Key', 'messaging-queues').inputs.policy);
      assert.equal(statements.length, 2);
      assert.deepEqual(statements[1], {
        Sid: 'SnsEncryptsForThisTopicOnly',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: '*',
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      });
    });
  });

  describe(`${expected.stack} stack: database`, () => {
    const db = resources.one('aws:rds/instance:Instance', 'database-postgres').inputs;

    test('when PostgreSQL is created, then it is version 16 or 17, private and in the isolated subnets', () => {
      assert.equal(db.engine, 'postgres');
      assert.ok(['16', '17'].includes(db.engineVersion));
      assert.equal(db.publiclyAccessible, false);
      assert.equal(db.manageMasterUserPassword, true);
      assert.equal(db.password, undefined);
      const subnetGroup = resources.one('aws:rds/subnetGroup:SubnetGroup', 'database-subnets').inputs;
      assert.deepEqual(subnetGroup.subnetIds, [
        'network-database-0-id',
        'network-database-1-id',
        'network-database-2-id',
      ]);
      assert.equal(db.dbSubnetGroupName, prefix);
    });

    test('when clients connect, then only the cluster’s nodes and pods reach port 5432', () => {
      const sg = resources.one('aws:ec2/securityGroup:SecurityGroup', 'database-postgres').inputs;
      assert.deepEqual(sg.ingress, [
        {
          protocol: 'tcp',
          fromPort: 5432,
          toPort: 5432,
          securityGroups: [nodeSecurityGroupId],
          description: 'PostgreSQL from the EKS cluster security group',
        },
      ]);
      assert.deepEqual(sg.egress, []);
      assert.deepEqual(db.vpcSecurityGroupIds, ['database-postgres-id']);
    });

    test('when the parameter group applies, then TLS is forced', () => {
      const group = resources.one('aws:rds/parameterGroup:ParameterGroup', 'database-postgres').inputs;
      assert.equal(group.family, `postgres${db.engineVersion}`);
      assert.ok(
        group.parameters.some((p: Record<string, string>) => p.name === 'rds.force_ssl' && p.value === '1'),
      );
      assert.equal(db.parameterGroupName, group.name);
    });

    test('when DATABASE_URL is published, then a KMS-encrypted secret holds the escaped URL as "url"', () => {
      const version = resources.one('aws:secretsmanager/secretVersion:SecretVersion', 'database-url').inputs;
      // The value travels as a Pulumi secret (encrypted in the state), never as plain text.
      assert.equal(version.secretString[pulumiSecretSignature], '1b47061264138c4ac30d75fd1eb44270');
      const secret = parseJson(version.secretString.value);
      const address = `${prefix}.abcdefghijkl.${region}.rds.amazonaws.com`;
      assert.equal(
        secret.url,
        `postgres://ingesta:${encodeURIComponent(masterPassword)}@${address}:5432/ingesta?sslmode=verify-full&sslrootcert=/app/certs/rds-global-bundle.pem`,
      );
      assert.equal(new URL(secret.url).password, encodeURIComponent(masterPassword));
      const app = new URL(secret.appUrl);
      assert.equal(app.username, 'ingesta_app_login');
      assert.equal(app.password, derivedPassword(masterPassword, 'ingesta_app_login'));
      assert.notEqual(app.password, encodeURIComponent(masterPassword));
      assert.equal(app.search, new URL(secret.url).search, 'the same TLS settings');
      assert.equal(decodeURIComponent(new URL(secret.url).password), masterPassword);
      const urlSecret = resources.one('aws:secretsmanager/secret:Secret', 'database-url').inputs;
      assert.equal(urlSecret.name, `ingesta/${expected.stack}/database`);
      assert.equal(run.outputs.databaseUrlSecretProperty, 'url');
    });

    test('when the URL copies the master password, then managed rotation of the master secret is off', () => {
      const rotation = resources.one(
        'aws:secretsmanager/secretRotation:SecretRotation',
        'database-master-rotation',
      );
      assert.equal(rotation.inputs.rotationEnabled, false);
      assert.equal(rotation.inputs.secretId, run.outputs.databaseMasterSecretArn);
    });
  });

  describe(`${expected.stack} stack: cluster`, () => {
    const cluster = resources.one('eks:index:Cluster', 'cluster').inputs;

    test('when EKS is created, then it runs in the private subnets with an OIDC provider and access entries only', () => {
      assert.deepEqual(cluster.privateSubnetIds, [
        'network-private-0-id',
        'network-private-1-id',
        'network-private-2-id',
      ]);
      assert.equal(cluster.createOidcProvider, true);
      assert.equal(cluster.authenticationMode, 'API');
      assert.equal(cluster.skipDefaultNodeGroup, true);
      assert.equal(cluster.nodeAssociatePublicIpAddress, false);
      assert.deepEqual(cluster.enabledClusterLogTypes, ['api', 'audit', 'authenticator']);
      assert.equal(cluster.version, clusterConfig.kubernetesVersion);
    });

    test('when nodes are created, then a managed node group in the private subnets with IMDSv2 out of pods’ reach', () => {
      const nodes = resources.one('eks:index:ManagedNodeGroup', 'cluster-nodes').inputs;
      assert.equal(nodes.cluster.__name, 'cluster');
      assert.deepEqual(nodes.subnetIds, cluster.privateSubnetIds);
      assert.deepEqual(nodes.instanceTypes, clusterConfig.nodeInstanceTypes);
      assert.deepEqual(nodes.scalingConfig, {
        minSize: clusterConfig.nodeMinSize,
        desiredSize: clusterConfig.nodeDesiredSize,
        maxSize: clusterConfig.nodeMaxSize,
      });
      assert.equal(nodes.launchTemplate.id, 'cluster-nodes-id');
      const template = resources.one('aws:ec2/launchTemplate:LaunchTemplate', 'cluster-nodes').inputs;
      assert.deepEqual(template.metadataOptions, {
        httpEndpoint: 'enabled',
        httpTokens: 'required',
        httpPutResponseHopLimit: 1,
      });
    });

    test('when the deploy role reaches Kubernetes, then only through a group bound in the app namespace', () => {
      assert.deepEqual(cluster.accessEntries, {
        deploy: { principalArn: run.outputs.deployRoleArn, kubernetesGroups: [deployersGroup] },
      });
      const role = resources.one('kubernetes:rbac.authorization.k8s.io/v1:Role', 'cluster-deployers').inputs;
      assert.equal(role.metadata.namespace, 'ingesta');
      assert.deepEqual(role.rules, [{ apiGroups: deployerApiGroups, resources: ['*'], verbs: ['*'] }]);
      assert.ok(
        !deployerApiGroups.includes('rbac.authorization.k8s.io'),
        'deployers must not grant themselves roles',
      );
      const binding = resources.one(
        'kubernetes:rbac.authorization.k8s.io/v1:RoleBinding',
        'cluster-deployers',
      ).inputs;
      assert.equal(binding.metadata.namespace, 'ingesta');
      assert.deepEqual(binding.subjects, [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: deployersGroup },
      ]);
      const labels = resources.one('kubernetes:core/v1:Namespace', 'cluster-app').inputs.metadata.labels;
      assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted');
      assert.equal(
        labels['elbv2.k8s.aws/pod-readiness-gate-inject'],
        'enabled',
        'a rollout waits for the NLB to see new API pods healthy',
      );
    });

    test('when the Load Balancer Controller is installed, then its service account carries its IRSA role', () => {
      const release = resources.one('kubernetes:helm.sh/v3:Release', 'addons-lbc').inputs;
      assert.equal(release.chart, 'aws-load-balancer-controller');
      assert.match(release.version, /^\d+\.\d+\.\d+$/);
      assert.equal(
        release.values.serviceAccount.annotations['eks.amazonaws.com/role-arn'],
        run.outputs.loadBalancerControllerRoleArn,
      );
      assert.equal(release.values.clusterName, prefix);
      assert.equal(release.values.vpcId, 'network-vpc-id');
      assert.equal(release.values.region, region);
    });

    test('when optional controllers are configured, then exactly those are installed', () => {
      const installed = resources
        .ofType('kubernetes:helm.sh/v3:Release')
        .map((release) => release.inputs.chart)
        .sort();
      const wanted = [
        'aws-load-balancer-controller',
        'metrics-server',
        'oci://public.ecr.aws/karpenter/karpenter',
      ];
      if (clusterConfig.keda) wanted.push('keda');
      if (clusterConfig.kubePrometheusStack) wanted.push('kube-prometheus-stack');
      if (clusterConfig.externalSecrets) wanted.push('external-secrets');
      assert.deepEqual(installed, wanted.sort());
    });
  });

  describe(`${expected.stack} stack: IAM`, () => {
    const irsaTrust = (roleName: string, namespace: string, serviceAccount: string) => {
      assert.deepEqual(trustOf(roleName), [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRoleWithWebIdentity',
          Principal: { Federated: `arn:aws:iam::${accountId}:oidc-provider/${oidcIssuer}` },
          Condition: {
            StringEquals: {
              [`${oidcIssuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`,
              [`${oidcIssuer}:aud`]: 'sts.amazonaws.com',
            },
          },
        },
      ]);
    };

    test('when the API role is assumed, then only by ingesta-api and it may only publish to the topic', () => {
      irsaTrust('workloads-api', 'ingesta', 'ingesta-api');
      assert.deepEqual(grants(rolePolicy('workloads-api')), [`sns:Publish ${topicArn}`]);
    });

    test('when the consumer role is assumed, then only by ingesta-consumer and it may only consume, dead-letter and replay to the allowed targets', () => {
      irsaTrust('workloads-consumer', 'ingesta', 'ingesta-consumer');
      const replayTargets = (
        (expected.config['ingesta:replay'] as { targetArns?: string[] } | undefined)?.targetArns ?? []
      ).map((arn) => `${arn.split(':')[2] === 'sqs' ? 'sqs:SendMessage' : 'sns:Publish'} ${arn}`);
      assert.deepEqual(
        grants(rolePolicy('workloads-consumer')),
        [
          ...replayTargets,
          `kms:Decrypt ${queueKeyArn}`,
          `kms:GenerateDataKey ${queueKeyArn}`,
          `sqs:ChangeMessageVisibility ${queueArn}`,
          `sqs:DeleteMessage ${queueArn}`,
          `sqs:GetQueueAttributes ${dlqArn}`,
          `sqs:GetQueueAttributes ${queueArn}`,
          `sqs:ReceiveMessage ${queueArn}`,
          `sqs:SendMessage ${dlqArn}`,
        ].sort(),
      );
    });

    test('when the controllers’ roles are assumed, then each by its service account for its one resource', () => {
      irsaTrust('addons-lbc', 'kube-system', 'aws-load-balancer-controller');
      const lbc = grants(rolePolicy('addons-lbc'));
      assert.deepEqual(
        lbc.filter((grant) => !grant.endsWith(' *')),
        [
          `elasticloadbalancing:DeregisterTargets ${targetGroupArn}`,
          `elasticloadbalancing:RegisterTargets ${targetGroupArn}`,
        ],
      );
      if (clusterConfig.keda) {
        irsaTrust('addons-keda', 'keda', 'keda-operator');
        assert.deepEqual(grants(rolePolicy('addons-keda')), [`sqs:GetQueueAttributes ${queueArn}`]);
      }
      if (clusterConfig.externalSecrets) {
        irsaTrust('addons-external-secrets', 'external-secrets', 'external-secrets');
        assert.deepEqual(grants(rolePolicy('addons-external-secrets')), [
          `kms:Decrypt ${databaseKeyArn}`,
          `secretsmanager:DescribeSecret ${run.outputs.databaseUrlSecretArn}`,
          `secretsmanager:GetSecretValue ${run.outputs.databaseUrlSecretArn}`,
        ]);
        const store = resources.one(
          'kubernetes:external-secrets.io/v1:ClusterSecretStore',
          'addons-secret-store',
        ).inputs;
        assert.deepEqual(store.spec.conditions, [{ namespaces: ['ingesta'] }]);
      }
    });

    test('when GitHub Actions assumes the deploy role, then only for the configured branches of the repository', () => {
      const github = expected.config['ingesta:github'];
      const [trust] = trustOf('deploy-github');
      assert.equal(trust?.Action, 'sts:AssumeRoleWithWebIdentity');
      assert.deepEqual(trust?.Principal, {
        Federated: `arn:aws:iam::${accountId}:oidc-provider/token.actions.githubusercontent.com`,
      });
      const subjects = [
        ...github.branches.map((branch: string) => `repo:${github.repository}:ref:refs/heads/${branch}`),
        ...(github.environments ?? []).map((name: string) => `repo:${github.repository}:environment:${name}`),
      ];
      assert.deepEqual(trust?.Condition, {
        StringEquals: {
          'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
          'token.actions.githubusercontent.com:sub': subjects,
        },
      });
      for (const subject of subjects) assert.doesNotMatch(subject, /\*/);
    });

    test('when the deploy role acts, then it pushes to the repository, finds the cluster, and (prod) pulls what it promotes, nothing more', () => {
      const repository = arn('ecr', `repository/${prefix}`);
      assert.deepEqual(
        grants(rolePolicy('deploy-github')),
        [
          'ecr:GetAuthorizationToken *',
          ...[
            'BatchCheckLayerAvailability',
            'BatchGetImage',
            'CompleteLayerUpload',
            'DescribeImages',
            'GetDownloadUrlForLayer',
            'InitiateLayerUpload',
            'PutImage',
            'UploadLayerPart',
          ].map((action) => `ecr:${action} ${repository}`),
          `eks:DescribeCluster ${arn('eks', `cluster/${prefix}`)}`,
          ...(expected.stack === 'prod'
            ? ['BatchGetImage', 'DescribeImages', 'GetDownloadUrlForLayer'].map(
                (action) => `ecr:${action} ${arn('ecr', 'repository/ingesta-dev')}`,
              )
            : []),
        ].sort(),
      );
    });

    test('when any role policy names "*" or a wildcard action, then only for actions AWS cannot scope', () => {
      const policies = resources.ofType('aws:iam/rolePolicy:RolePolicy');
      assert.ok(policies.length >= 4);
      for (const policy of policies) {
        for (const statement of statementsOf(policy.inputs.policy)) {
          assert.equal(statement.Effect, 'Allow', policy.name);
          const actions = asList(statement.Action);
          for (const action of actions) assert.doesNotMatch(action, /\*/, `${policy.name}: ${action}`);
          const resourcesNamed = asList(statement.Resource);
          assert.ok(resourcesNamed.length > 0, `${policy.name}: statement without Resource`);
          if (resourcesNamed.includes('*')) {
            for (const action of actions) {
              assert.ok(
                actionsWithoutResourceLevelPermissions.has(action),
                `${policy.name}: ${action} on "*"`,
              );
            }
          } else {
            for (const resource of resourcesNamed)
              assert.match(resource, /^arn:aws:[a-z0-9-]+:/, policy.name);
          }
        }
      }
    });

    test('when roles are created, then none gets a managed policy except the EKS node role', () => {
      const attachments = resources.ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment');
      for (const attachment of attachments) assert.equal(attachment.inputs.role, `${prefix}-nodes`);
      assert.deepEqual(
        attachments.map((attachment) => attachment.inputs.policyArn),
        [
          'arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy',
          'arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy',
          'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly',
        ],
      );
    });
  });

  describe(`${expected.stack} stack: scaling, network policy and monitoring add-ons`, () => {
    const release = (name: string) => resources.one('kubernetes:helm.sh/v3:Release', name).inputs;
    const subjectOf = (roleName: string) =>
      trustOf(roleName)[0]?.Condition?.StringEquals?.[`${oidcIssuer}:sub`];

    test('when CPU HPAs read metrics, then metrics-server serves the resource metrics API', () => {
      const metricsServer = release('autoscaling-metrics-server');
      assert.equal(metricsServer.chart, 'metrics-server');
      assert.equal(metricsServer.namespace, 'kube-system');
      assert.match(metricsServer.version, /^\d+\.\d+\.\d+$/);
    });

    test('when pods are pending, then Karpenter adds nodes with its own role, bounded by the NodePool limit', () => {
      const karpenter = release('autoscaling-karpenter');
      assert.equal(karpenter.chart, 'oci://public.ecr.aws/karpenter/karpenter');
      assert.match(karpenter.version, /^1\.\d+\.\d+$/);
      assert.equal(
        karpenter.values.serviceAccount.annotations['eks.amazonaws.com/role-arn'],
        run.outputs.karpenterRoleArn,
      );
      assert.equal(karpenter.values.settings.clusterName, prefix);
      assert.equal(subjectOf('autoscaling-karpenter'), 'system:serviceaccount:kube-system:karpenter');
      const granted = grants(rolePolicy('autoscaling-karpenter'));
      assert.ok(granted.includes(`iam:PassRole arn:aws:iam::${accountId}:role/${prefix}-nodes`));
      assert.deepEqual(
        granted.filter((grant) => grant.startsWith('iam:PassRole')),
        [`iam:PassRole arn:aws:iam::${accountId}:role/${prefix}-nodes`],
        'it passes the node role only',
      );
      const terminate = statementsOf(rolePolicy('autoscaling-karpenter')).find((statement) =>
        asList(statement.Action).includes('ec2:TerminateInstances'),
      );
      assert.deepEqual(terminate?.Condition, {
        StringEquals: { [`aws:ResourceTag/kubernetes.io/cluster/${prefix}`]: 'owned' },
      });
      const nodeClass = resources.one(
        'kubernetes:karpenter.k8s.aws/v1:EC2NodeClass',
        'autoscaling-node-class',
      ).inputs;
      assert.equal(nodeClass.spec.role, `${prefix}-nodes`);
      assert.deepEqual(nodeClass.spec.metadataOptions, {
        httpEndpoint: 'enabled',
        httpTokens: 'required',
        httpPutResponseHopLimit: 1,
      });
      assert.deepEqual(nodeClass.spec.securityGroupSelectorTerms, [{ id: nodeSecurityGroupId }]);
      const pool = resources.one('kubernetes:karpenter.sh/v1:NodePool', 'autoscaling-node-pool').inputs;
      assert.match(pool.spec.limits.cpu, /^\d+$/);
      assert.equal(pool.spec.template.spec.nodeClassRef.name, nodeClass.metadata.name);
    });

    test('when AWS is about to reclaim a node, then EventBridge queues the event for Karpenter to drain it first', () => {
      const queue = resources.one('aws:sqs/queue:Queue', 'autoscaling-interruptions').inputs;
      const queueArn = arn('sqs', queue.name);
      assert.equal(release('autoscaling-karpenter').values.settings.interruptionQueue, queue.name);
      const targets = resources
        .ofType('aws:cloudwatch/eventTarget:EventTarget')
        .filter((target) => target.name.startsWith('autoscaling-'));
      assert.equal(targets.length, 4);
      for (const target of targets) assert.equal(target.inputs.arn, queueArn, target.name);
      const patterns = resources
        .ofType('aws:cloudwatch/eventRule:EventRule')
        .filter((rule) => rule.name.startsWith('autoscaling-'))
        .map((rule) => parseJson(rule.inputs.eventPattern)['detail-type'][0])
        .sort();
      assert.deepEqual(patterns, [
        'AWS Health Event',
        'EC2 Instance Rebalance Recommendation',
        'EC2 Instance State-change Notification',
        'EC2 Spot Instance Interruption Warning',
      ]);
      assert.deepEqual(
        grants(rolePolicy('autoscaling-karpenter')).filter((grant) => grant.startsWith('sqs:')),
        ['sqs:DeleteMessage', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'].map(
          (action) => `${action} ${queueArn}`,
        ),
      );
    });

    test('when NetworkPolicies are applied, then the VPC CNI enforces them (network policy agent on)', () => {
      const cluster = resources.one('eks:index:Cluster', 'cluster').inputs;
      assert.equal(cluster.vpcCniOptions?.enableNetworkPolicy, true);
    });

    test('when Prometheus selects ServiceMonitors and rules, then it selects every one, and Grafana files dashboards by folder', () => {
      if (!clusterConfig.kubePrometheusStack) return;
      const spec = release('addons-monitoring').values.prometheus.prometheusSpec;
      for (const kind of ['serviceMonitor', 'podMonitor', 'probe', 'rule']) {
        assert.equal(spec[`${kind}SelectorNilUsesHelmValues`], false, kind);
        assert.deepEqual(spec[`${kind}Selector`], {}, kind);
        assert.deepEqual(spec[`${kind}NamespaceSelector`], {}, kind);
      }
      const sidecar = release('addons-monitoring').values.grafana.sidecar.dashboards;
      assert.equal(sidecar.folderAnnotation, 'grafana_folder');
      assert.equal(sidecar.searchNamespace, 'ALL');
    });

    test('when the chart scales the consumer with KEDA, then the identity it names can read the queue depth', () => {
      if (!clusterConfig.keda) return;
      const environment = expected.stack === 'prod' ? 'production' : 'staging';
      const deployValues = parse(
        readFileSync(new URL(`../../deploy/values/${environment}.yaml`, import.meta.url), 'utf8'),
      );
      const keda = deployValues.consumer.autoscaling.keda;
      assert.equal(deployValues.consumer.autoscaling.enabled, true);
      // `workload` would make KEDA assume the consumer's role, which trusts the consumer's service
      // account only; the operator's own role is the one that trusts KEDA.
      assert.equal(keda.identityOwner, 'keda');
      assert.equal(keda.roleArn, undefined);
      assert.deepEqual(subjectOf('workloads-consumer'), 'system:serviceaccount:ingesta:ingesta-consumer');
      assert.equal(subjectOf('addons-keda'), 'system:serviceaccount:keda:keda-operator');
      assert.deepEqual(grants(rolePolicy('addons-keda')), [`sqs:GetQueueAttributes ${queueArn}`]);
      assert.equal(release('addons-keda').values.podIdentity.aws.irsa.roleArn, run.outputs.kedaRoleArn);
    });
  });

  describe(`${expected.stack} stack: registry`, () => {
    test('when images are pushed, then tags are immutable, pushes scanned and old images expire', () => {
      const repository = resources.one('aws:ecr/repository:Repository', 'registry').inputs;
      assert.equal(repository.imageTagMutability, 'IMMUTABLE');
      assert.deepEqual(repository.imageScanningConfiguration, { scanOnPush: true });
      const lifecycle = parseJson(
        resources.one('aws:ecr/lifecyclePolicy:LifecyclePolicy', 'registry').inputs.policy,
      );
      assert.deepEqual(
        lifecycle.rules.map((rule: { selection: { tagStatus: string } }) => rule.selection.tagStatus),
        ['untagged', 'any'],
      );
      assert.equal(lifecycle.rules[1].selection.countNumber, 100);
    });
  });

  describe(`${expected.stack} stack: edge`, () => {
    test('when routes are created, then each of the four carries the JWT authorizer and its scope', () => {
      const authorizer = resources.one('aws:apigatewayv2/authorizer:Authorizer', 'edge-jwt').inputs;
      assert.equal(authorizer.authorizerType, 'JWT');
      assert.deepEqual(authorizer.identitySources, ['$request.header.Authorization']);
      assert.deepEqual(authorizer.jwtConfiguration, {
        issuer: edgeConfig.issuer,
        audiences: [edgeConfig.audience],
      });
      const routes = resources.ofType('aws:apigatewayv2/route:Route');
      assert.deepEqual(
        routes.map((route) => [route.inputs.routeKey, route.inputs.authorizationScopes]).sort(),
        [
          ['GET /v1/events', ['events:read']],
          ['GET /v1/events/{source}/{id}', ['events:read']],
          ['GET /v1/stats', ['events:read']],
          ['POST /v1/events', ['events:write']],
        ],
      );
      for (const route of routes) {
        assert.equal(route.inputs.authorizationType, 'JWT', route.inputs.routeKey);
        assert.equal(route.inputs.authorizerId, 'edge-jwt-id', route.inputs.routeKey);
        assert.equal(route.inputs.target, 'integrations/edge-nlb-id', route.inputs.routeKey);
      }
    });

    test('when a request passes the authorizer, then it reaches the NLB listener through the VPC link', () => {
      const integration = resources.one('aws:apigatewayv2/integration:Integration', 'edge-nlb').inputs;
      assert.equal(integration.connectionType, 'VPC_LINK');
      assert.equal(integration.connectionId, 'edge-vpc-link-id');
      assert.equal(integration.integrationType, 'HTTP_PROXY');
      assert.equal(
        integration.integrationUri,
        arn('elasticloadbalancing', 'listener/net/ingesta/0123456789abcdef/fedcba9876543210'),
      );
      const link = resources.one('aws:apigatewayv2/vpcLink:VpcLink', 'edge-vpc-link').inputs;
      assert.deepEqual(link.subnetIds, [
        'network-private-0-id',
        'network-private-1-id',
        'network-private-2-id',
      ]);
    });

    test('when the NLB forwards, then TCP 80 goes to IP targets on 8080 health-checked on 9464 /readyz', () => {
      const nlb = resources.one('aws:lb/loadBalancer:LoadBalancer', 'edge-nlb').inputs;
      assert.equal(nlb.internal, true);
      assert.equal(nlb.loadBalancerType, 'network');
      const listener = resources.one('aws:lb/listener:Listener', 'edge-api').inputs;
      assert.equal(listener.port, 80);
      assert.equal(listener.protocol, 'TCP');
      assert.deepEqual(listener.defaultActions, [{ type: 'forward', targetGroupArn }]);
      const group = resources.one('aws:lb/targetGroup:TargetGroup', 'edge-api').inputs;
      assert.equal(group.targetType, 'ip');
      assert.equal(group.port, 8080);
      assert.equal(group.protocol, 'TCP');
      assert.equal(group.healthCheck.protocol, 'HTTP');
      assert.equal(group.healthCheck.port, '9464');
      assert.equal(group.healthCheck.path, '/readyz');
      assert.equal(run.outputs.targetGroupArn, targetGroupArn);
    });

    test('when traffic reaches the pods, then only from the NLB’s security group on 8080 and 9464', () => {
      const rules = resources.ofType('aws:ec2/securityGroupRule:SecurityGroupRule');
      assert.deepEqual(
        rules.map((rule) => [
          rule.inputs.type,
          rule.inputs.securityGroupId,
          rule.inputs.sourceSecurityGroupId,
          rule.inputs.fromPort,
        ]),
        [
          ['ingress', nodeSecurityGroupId, 'edge-nlb-id', 8080],
          ['ingress', nodeSecurityGroupId, 'edge-nlb-id', 9464],
        ],
      );
      const nlb = resources.one('aws:ec2/securityGroup:SecurityGroup', 'edge-nlb').inputs;
      assert.deepEqual(
        nlb.ingress.map((rule: Record<string, unknown>) => [rule.fromPort, rule.securityGroups]),
        [[80, ['edge-vpc-link-id']]],
      );
    });

    test('when the stage serves, then it throttles and writes JSON access logs to its log group', () => {
      const stage = resources.one('aws:apigatewayv2/stage:Stage', 'edge-default').inputs;
      assert.equal(stage.defaultRouteSettings.throttlingBurstLimit, edgeConfig.throttlingBurstLimit);
      assert.equal(stage.defaultRouteSettings.throttlingRateLimit, edgeConfig.throttlingRateLimit);
      assert.equal(stage.defaultRouteSettings.detailedMetricsEnabled, true);
      assert.equal(
        stage.accessLogSettings.destinationArn,
        arn('logs', `log-group:/aws/apigateway/${prefix}`),
      );
      const format = parseJson(stage.accessLogSettings.format);
      assert.equal(format.requestId, '$context.requestId');
      assert.equal(format.status, '$context.status');
      const logGroup = resources.one('aws:cloudwatch/logGroup:LogGroup', 'edge-access-logs').inputs;
      assert.equal(logGroup.retentionInDays, edgeConfig.accessLogRetentionDays);
    });
  });

  describe(`${expected.stack} stack: alarms`, () => {
    const metricAlarms = resources.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
    const composites = resources.ofType('aws:cloudwatch/compositeAlarm:CompositeAlarm');
    const alarm = (name: string) =>
      resources.one('aws:cloudwatch/metricAlarm:MetricAlarm', `alarms-${name}`).inputs;
    const topicOf = (severity: string) => arn('sns', `${prefix}-alarms-${severity}`);
    const nameOf = (resource: RecordedResource): string => resource.inputs.name ?? resource.inputs.alarmName;

    test('when an alarm fires, then its description names its runbook and notifying alarms reach the alarm topic', () => {
      for (const resource of [...metricAlarms, ...composites]) {
        const logical = nameOf(resource).slice(prefix.length + 1);
        const runbookOf = logical.replace(/-(long|short)-window$/, '');
        assert.ok(
          resource.inputs.alarmDescription.endsWith(`Runbook: docs/runbooks/${runbookOf}.md`),
          `${logical}: ${resource.inputs.alarmDescription}`,
        );
        if (runbookOf === logical) {
          const severity =
            alarmSeverity[logical] ?? (logical.startsWith('api-latency-') ? latencyAlarmSeverity : undefined);
          assert.ok(severity, `${logical} has a severity`);
          assert.deepEqual(resource.inputs.alarmActions, [topicOf(severity)], logical);
          assert.deepEqual(resource.inputs.okActions, [topicOf(severity)], logical);
        } else {
          assert.equal(resource.inputs.alarmActions, undefined, `${logical} notifies through its composite`);
        }
      }
    });

    test('when alarm names are exported, then they are exactly the notifying alarms', () => {
      const notifying = [...metricAlarms, ...composites].map(nameOf).filter((name) => !/-window$/.test(name));
      assert.deepEqual([...run.outputs.alarmNames].sort(), notifying.sort());
      assert.equal(notifying.length, 13);
    });

    test('when docs/slo.md pages on a 6x burn, then so does the slow 5xx burn alarm, and the fast one', () => {
      assert.deepEqual(
        burnRates.map((rate) => [rate.name, rate.severity]),
        [
          ['fast', 'page'],
          ['slow', 'page'],
        ],
      );
    });

    test('when no healthy API pod sits behind the NLB for 2 minutes, then a page', () => {
      const hosts = alarm('nlb-healthy-hosts-low');
      assert.equal(hosts.namespace, 'AWS/NetworkELB');
      assert.equal(hosts.metricName, 'HealthyHostCount');
      assert.deepEqual(Object.keys(hosts.dimensions).sort(), ['LoadBalancer', 'TargetGroup']);
      assert.equal(hosts.statistic, 'Minimum');
      assert.equal(hosts.threshold, 1);
      assert.equal(hosts.comparisonOperator, 'LessThanThreshold');
      assert.equal(hosts.period * hosts.evaluationPeriods, 120);
      assert.equal(hosts.treatMissingData, 'breaching');
      assert.equal(alarmSeverity['nlb-healthy-hosts-low'], 'page');
    });

    test('when the queue backs up, then the oldest-message alarm fires past one visibility timeout for 5 minutes', () => {
      const age = alarm('queue-oldest-message-age');
      assert.equal(age.namespace, 'AWS/SQS');
      assert.equal(age.metricName, 'ApproximateAgeOfOldestMessage');
      assert.deepEqual(age.dimensions, { QueueName: `${prefix}-events` });
      assert.equal(age.statistic, 'Maximum');
      assert.equal(age.threshold, 60);
      assert.equal(age.comparisonOperator, 'GreaterThanThreshold');
      assert.equal(age.period * age.evaluationPeriods, 300);
      assert.equal(age.datapointsToAlarm, age.evaluationPeriods);
    });

    test('when any message lands in a DLQ, then an alarm fires at once', () => {
      for (const [name, queue] of [
        ['dlq-messages-visible', `${prefix}-events-dlq`],
        ['subscription-dlq-messages-visible', `${prefix}-events-subscription-dlq`],
      ]) {
        const dlq = alarm(name!);
        assert.equal(dlq.metricName, 'ApproximateNumberOfMessagesVisible');
        assert.deepEqual(dlq.dimensions, { QueueName: queue });
        assert.equal(dlq.threshold, 0);
        assert.equal(dlq.comparisonOperator, 'GreaterThanThreshold');
        assert.equal(dlq.evaluationPeriods, 1);
      }
    });

    test('when PostgreSQL strains, then CPU, free storage and connection alarms watch this instance', () => {
      const dbConfig = expected.config['ingesta:database'];
      for (const name of ['db-cpu-high', 'db-free-storage-low', 'db-connections-high']) {
        assert.deepEqual(alarm(name).dimensions, { DBInstanceIdentifier: prefix }, name);
      }
      assert.equal(alarm('db-cpu-high').threshold, 80);
      assert.equal(alarm('db-free-storage-low').comparisonOperator, 'LessThanThreshold');
      assert.equal(
        alarm('db-free-storage-low').threshold,
        Math.round(dbConfig.allocatedStorageGb * 1024 ** 3 * 0.1),
      );
      const connections = alarm('db-connections-high');
      const memoryGib: Record<string, number> = { 'db.t4g.micro': 1, 'db.m7g.large': 8 };
      const maxConnections = Math.floor((memoryGib[dbConfig.instanceClass]! * 1024 ** 3 * 0.9) / 9531392);
      assert.equal(connections.threshold, Math.floor(maxConnections * 0.8));
    });

    test('when 5xx burn the 99.9 % budget, then fast (14.4x) and slow (6x) burn alarms need both windows', () => {
      const expectedBurns = [
        ['fast', 1.44, 3600, 300],
        ['slow', 0.6, 21600, 1800],
      ] as const;
      for (const [speed, threshold, longSec, shortSec] of expectedBurns) {
        const composite = resources.one(
          'aws:cloudwatch/compositeAlarm:CompositeAlarm',
          `alarms-api-5xx-${speed}-burn`,
        );
        assert.equal(
          composite.inputs.alarmRule,
          `ALARM("${prefix}-api-5xx-${speed}-burn-long-window") AND ALARM("${prefix}-api-5xx-${speed}-burn-short-window")`,
        );
        for (const [window, periodSec] of [
          ['long', longSec],
          ['short', shortSec],
        ] as const) {
          const child = alarm(`api-5xx-${speed}-burn-${window}-window`);
          assert.equal(child.threshold, threshold);
          assert.equal(child.comparisonOperator, 'GreaterThanThreshold');
          const queries = child.metricQueries as { id: string; expression?: string; metric?: Json }[];
          assert.deepEqual(
            queries
              .filter((query) => query.metric)
              .map((query) => [query.metric.metricName, query.metric.stat, query.metric.period]),
            [
              ['5xx', 'Sum', periodSec],
              ['Count', 'Sum', periodSec],
            ],
          );
          for (const query of queries.filter((q) => q.metric)) {
            assert.deepEqual(query.metric.dimensions, { ApiId: 'edge-api-id', Stage: '$default' });
          }
          assert.equal(
            queries.find((query) => query.expression)?.expression,
            'IF(requests > 0, 100 * errors / requests, 0)',
          );
        }
      }
    });

    test('when routes slow down, then p99 alarms hold POST to 200 ms and GETs to 300 ms per route', () => {
      const latency = metricAlarms.filter((resource) => resource.name.startsWith('alarms-api-latency-'));
      assert.deepEqual(
        latency.map((resource) => [
          resource.inputs.dimensions.Method,
          resource.inputs.dimensions.Resource,
          resource.inputs.threshold,
        ]),
        [
          ['POST', '/v1/events', 200],
          ['GET', '/v1/events', 300],
          ['GET', '/v1/events/{source}/{id}', 300],
          ['GET', '/v1/stats', 300],
        ],
      );
      for (const resource of latency) {
        assert.equal(resource.inputs.metricName, 'IntegrationLatency');
        assert.equal(resource.inputs.extendedStatistic, 'p99');
        assert.equal(resource.inputs.dimensions.ApiId, 'edge-api-id');
        assert.equal(resource.inputs.dimensions.Stage, '$default');
      }
    });

    test('when the dashboard is drawn, then it shows every notifying alarm and the queue, database and API metrics', () => {
      const body = parseJson(
        resources.one('aws:cloudwatch/dashboard:Dashboard', 'alarms-dashboard').inputs.dashboardBody,
      );
      const alarmWidget = body.widgets.find((widget: { type: string }) => widget.type === 'alarm');
      assert.equal(alarmWidget.properties.alarms.length, 13);
      const metrics = JSON.stringify(body.widgets);
      for (const needle of [
        'ApproximateAgeOfOldestMessage',
        'CPUUtilization',
        'FreeStorageSpace',
        'DatabaseConnections',
        '5xx',
        'IntegrationLatency',
      ]) {
        assert.ok(metrics.includes(needle), needle);
      }
    });

    test('when CloudWatch publishes to the encrypted alarm topic, then the key allows it', () => {
      const [, cloudwatch] = statementsOf(resources.one('aws:kms/key:Key', 'alarms-topic').inputs.policy);
      assert.deepEqual(cloudwatch?.Principal, { Service: 'cloudwatch.amazonaws.com' });
      assert.deepEqual(cloudwatch?.Action, ['kms:Decrypt', 'kms:GenerateDataKey*']);
    });
  });

  describe(`${expected.stack} stack: outputs`, () => {
    test('when the chart values are generated from the outputs, then every chart key gets its stack value', () => {
      const values = outputsToValues(run.outputs, { externalSecret: true }) as Json;
      assert.equal(values.aws.topicArn, topicArn);
      assert.equal(values.aws.queueUrl, `https://sqs.${region}.amazonaws.com/${accountId}/${prefix}-events`);
      assert.equal(
        values.aws.dlqUrl,
        `https://sqs.${region}.amazonaws.com/${accountId}/${prefix}-events-dlq`,
      );
      assert.equal(values.api.serviceAccount.roleArn, `arn:aws:iam::${accountId}:role/${prefix}-api`);
      assert.equal(
        values.consumer.serviceAccount.roleArn,
        `arn:aws:iam::${accountId}:role/${prefix}-consumer`,
      );
      assert.equal(values.api.targetGroupBinding.targetGroupArn, targetGroupArn);
      assert.deepEqual(values.networkPolicy.loadBalancerCidrs, [expected.config['ingesta:network'].vpcCidr]);
      assert.equal(values.image.repository, `${accountId}.dkr.ecr.${region}.amazonaws.com/${prefix}`);
      assert.deepEqual(values.database.existingSecret, { name: 'ingesta-database', key: 'DATABASE_URL' });
      assert.equal(values.database.externalSecret.remoteKey, `ingesta/${expected.stack}/database`);
      assert.deepEqual(values.auth, {
        issuer: edgeConfig.issuer,
        audience: edgeConfig.audience,
        jwksUrl: edgeConfig.jwksUrl,
      });
      assert.equal(run.outputs.clusterName, prefix);
      assert.equal(run.outputs.tokenUrl, edgeConfig.tokenUrl);
      assert.match(run.outputs.apiUrl, /^https:\/\//);
    });

    test('when the program runs, then the only invokes are the caller identity and the master secret', () => {
      assert.deepEqual([...new Set(run.calls)].sort(), [
        'aws:index/getCallerIdentity:getCallerIdentity',
        'aws:secretsmanager/getSecretVersion:getSecretVersion',
      ]);
    });
  });
}
