import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { ClusterAddons, secretStoreName } from './src/components/addons.ts';
import { Alarms } from './src/components/alarms.ts';
import { ClusterAutoscaling } from './src/components/autoscaling.ts';
import { Cluster } from './src/components/cluster.ts';
import { Database } from './src/components/database.ts';
import { apiDeregistrationDelaySec, Edge } from './src/components/edge.ts';
import { DeployIdentity, replayTargetsOf, WorkloadIdentity } from './src/components/identity.ts';
import { Messaging } from './src/components/messaging.ts';
import { Network } from './src/components/network.ts';
import { Registry } from './src/components/registry.ts';
import { readStackConfig } from './src/config.ts';

const config = readStackConfig();
const region = new pulumi.Config('aws').require('region');
const accountId = aws.getCallerIdentityOutput().accountId;
const { prefix } = config;

const network = new Network('network', { prefix, region, ...config.network });
const messaging = new Messaging('messaging', { prefix, accountId });
const registry = new Registry('registry', { prefix });
const deploy = new DeployIdentity('deploy', {
  prefix,
  stack: config.stack,
  github: config.github,
  accountId,
  region,
  clusterName: prefix,
  repositoryArn: registry.repositoryArn,
});
const cluster = new Cluster('cluster', {
  prefix,
  accountId,
  vpcId: network.vpcId,
  privateSubnetIds: network.privateSubnetIds,
  deployRoleArn: deploy.roleArn,
  ...config.cluster,
});
const database = new Database('database', {
  prefix,
  stack: config.stack,
  production: config.production,
  accountId,
  vpcId: network.vpcId,
  subnetIds: network.databaseSubnetIds,
  clientSecurityGroupId: cluster.nodeSecurityGroupId,
  ...config.database,
});
const edge = new Edge('edge', {
  prefix,
  production: config.production,
  region,
  accountId,
  vpcId: network.vpcId,
  vpcCidr: network.vpcCidr,
  privateSubnetIds: network.privateSubnetIds,
  nodeSecurityGroupId: cluster.nodeSecurityGroupId,
  ...config.edge,
});
const oidc = { oidcProviderArn: cluster.oidcProviderArn, oidcIssuer: cluster.oidcIssuer };
const workloads = new WorkloadIdentity('workloads', {
  ...oidc,
  prefix,
  namespace: config.cluster.appNamespace,
  release: config.cluster.appRelease,
  topicArn: messaging.topicArn,
  queueArn: messaging.queueArn,
  dlqArn: messaging.dlqArn,
  queueKeyArn: messaging.queueKeyArn,
  replayTargetArns: config.replay.targetArns,
});
// The controllers wait for the whole cluster component, node group included: Helm waits for their pods.
const addons = new ClusterAddons(
  'addons',
  {
    ...oidc,
    prefix,
    region,
    clusterName: cluster.name,
    vpcId: network.vpcId,
    provider: cluster.provider,
    options: config.cluster,
    targetGroupArn: edge.targetGroupArn,
    queueArn: messaging.queueArn,
    queueKeyArn: messaging.queueKeyArn,
    databaseUrlSecretArn: database.urlSecretArn,
    databaseKeyArn: database.keyArn,
  },
  { dependsOn: [cluster] },
);
const autoscaling = new ClusterAutoscaling(
  'autoscaling',
  {
    ...oidc,
    prefix,
    region,
    accountId,
    clusterName: cluster.name,
    provider: cluster.provider,
    nodeRoleName: cluster.nodeRoleName,
    nodeRoleArn: cluster.nodeRoleArn,
    nodeSecurityGroupId: cluster.nodeSecurityGroupId,
    options: config.cluster,
  },
  { dependsOn: [cluster] },
);
const alarms = new Alarms('alarms', {
  prefix,
  region,
  accountId,
  pageSubscriptions: config.alarms.pageSubscriptions,
  ticketSubscriptions: config.alarms.ticketSubscriptions,
  queueName: messaging.queueName,
  dlqName: messaging.dlqName,
  subscriptionDlqName: messaging.subscriptionDlqName,
  dbIdentifier: database.identifier,
  dbAllocatedStorageGb: database.allocatedStorageGb,
  dbMaxConnections: database.maxConnections,
  apiId: edge.apiId,
  stageName: edge.stageName,
  loadBalancerArnSuffix: edge.loadBalancerArnSuffix,
  targetGroupArnSuffix: edge.targetGroupArnSuffix,
});

// Everything the chart's values need (scripts/outputs-to-values.ts maps them), then the rest.
export const awsRegion = region;
export const clusterName = cluster.name;
export const namespace = config.cluster.appNamespace;
export const ecrRepositoryUrl = registry.repositoryUrl;
export const topicArn = messaging.topicArn;
export const queueUrl = messaging.queueUrl;
export const dlqUrl = messaging.dlqUrl;
export const apiRoleArn = workloads.apiRoleArn;
export const consumerRoleArn = workloads.consumerRoleArn;
export const replayTargets = replayTargetsOf(config.replay.targetArns);
export const targetGroupArn = edge.targetGroupArn;
/** The chart checks its API preStop sleep and drain against it (api.targetGroupBinding). */
export const targetGroupDeregistrationDelaySec = apiDeregistrationDelaySec;
export const vpcCidr = network.vpcCidr;
/** The Kubernetes Secret the chart's ExternalSecret creates, and its key. */
export const databaseSecretName = `${config.cluster.appRelease}-database`;
export const databaseSecretKey = 'DATABASE_URL';
/** Where that ExternalSecret reads from: Secrets Manager secret, JSON property, store. */
export const databaseUrlSecretName = database.urlSecretName;
export const databaseUrlSecretArn = database.urlSecretArn;
export const databaseUrlSecretProperty = database.urlSecretProperty;
export const databaseAppUrlSecretProperty = database.appUrlSecretProperty;
export const databaseSecretStore = config.cluster.externalSecrets ? secretStoreName : '';
export const authIssuer = config.edge.issuer;
export const authAudience = config.edge.audience;
export const authJwksUrl = config.edge.jwksUrl;
export const tokenUrl = config.edge.tokenUrl;
export const apiUrl = edge.apiEndpoint;

export const vpcId = network.vpcId;
export const databaseSubnetCidrs = network.databaseSubnetCidrs;
export const databaseAddress = database.address;
export const databaseMasterSecretArn = database.masterSecretArn;
export const kubeconfig = cluster.kubeconfig;
export const deployRoleArn = deploy.roleArn;
export const loadBalancerControllerRoleArn = addons.loadBalancerControllerRoleArn;
export const kedaRoleArn = addons.kedaRoleArn ?? '';
export const externalSecretsRoleArn = addons.externalSecretsRoleArn ?? '';
export const karpenterRoleArn = autoscaling.karpenterRoleArn;
export const karpenterInterruptionQueue = autoscaling.interruptionQueueName;
export const alarmPageTopicArn = alarms.topicArns.page;
export const alarmTicketTopicArn = alarms.topicArns.ticket;
export const alarmNames = alarms.alarmNames;
export const dashboardName = alarms.dashboardName;
export const apiAccessLogGroup = edge.accessLogGroupName;
