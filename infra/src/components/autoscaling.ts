import * as aws from '@pulumi/aws';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClusterConfig } from '../config.ts';
import { policyDocument } from '../policy.ts';
import { type ClusterOidc, irsaRole } from './identity.ts';

export interface AutoscalingArgs extends ClusterOidc {
  prefix: string;
  region: string;
  accountId: pulumi.Input<string>;
  clusterName: string;
  provider: k8s.Provider;
  /** Role of the nodes (the managed node group's): Karpenter launches its nodes with it. */
  nodeRoleName: pulumi.Input<string>;
  nodeRoleArn: pulumi.Input<string>;
  /** Security group every node and pod carries (the EKS cluster security group). */
  nodeSecurityGroupId: pulumi.Input<string>;
  options: Pick<ClusterConfig, 'chartVersions' | 'nodeInstanceTypes' | 'autoscaledCpuLimit'>;
}

/** EventBridge events Karpenter reacts to before AWS takes an instance away. */
export const interruptionEvents: { name: string; pattern: Record<string, unknown> }[] = [
  {
    name: 'spot-interruption',
    pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Spot Instance Interruption Warning'] },
  },
  {
    name: 'rebalance',
    pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Instance Rebalance Recommendation'] },
  },
  {
    name: 'instance-state-change',
    pattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] },
  },
  { name: 'scheduled-change', pattern: { source: ['aws.health'], 'detail-type': ['AWS Health Event'] } },
];

/** The Karpenter NodePool ingesta's pods land on, and the EC2NodeClass it launches from. */
export const nodePoolName = 'default';

/**
 * What makes the cluster scale: metrics-server (the resource metrics API the CPU HPAs read; without
 * it they show `<unknown>` and never act) and Karpenter (adds nodes when pods are pending, removes
 * empty or underused ones), with its IRSA role and the SQS queue EventBridge fills with
 * interruption and health events, so nodes are drained before AWS reclaims them.
 */
export class ClusterAutoscaling extends pulumi.ComponentResource {
  readonly karpenterRoleArn: pulumi.Output<string>;
  readonly interruptionQueueName: pulumi.Output<string>;

  constructor(name: string, args: AutoscalingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:cluster:ClusterAutoscaling', name, {}, opts);
    const parent = { parent: this };
    const k8sOpts = { parent: this, provider: args.provider };
    const versions = args.options.chartVersions;

    new k8s.helm.v3.Release(
      `${name}-metrics-server`,
      {
        name: 'metrics-server',
        chart: 'metrics-server',
        version: versions.metricsServer,
        repositoryOpts: { repo: 'https://kubernetes-sigs.github.io/metrics-server/' },
        namespace: 'kube-system',
        values: { replicas: 2, podDisruptionBudget: { enabled: true, maxUnavailable: 1 } },
      },
      k8sOpts,
    );

    // Interruption queue: EventBridge delivers, Karpenter reads. SSE with the SQS-managed key keeps
    // EventBridge's delivery free of KMS grants.
    const queue = new aws.sqs.Queue(
      `${name}-interruptions`,
      { name: `${args.prefix}-karpenter`, messageRetentionSeconds: 300, sqsManagedSseEnabled: true },
      parent,
    );
    new aws.sqs.QueuePolicy(
      `${name}-interruptions`,
      {
        queueUrl: queue.url,
        policy: policyDocument([
          {
            Sid: 'EventBridgeDelivers',
            Effect: 'Allow',
            Principal: { Service: ['events.amazonaws.com', 'sqs.amazonaws.com'] },
            Action: 'sqs:SendMessage',
            Resource: queue.arn,
          },
          {
            Sid: 'TlsOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 'sqs:*',
            Resource: queue.arn,
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ]),
      },
      parent,
    );
    for (const event of interruptionEvents) {
      const rule = new aws.cloudwatch.EventRule(
        `${name}-${event.name}`,
        { name: `${args.prefix}-karpenter-${event.name}`, eventPattern: JSON.stringify(event.pattern) },
        parent,
      );
      new aws.cloudwatch.EventTarget(`${name}-${event.name}`, { rule: rule.name, arn: queue.arn }, parent);
    }

    const ec2 = (resource: string) =>
      pulumi.interpolate`arn:aws:ec2:${args.region}:${args.accountId}:${resource}`;
    const anyAccountEc2 = (resource: string) => `arn:aws:ec2:${args.region}::${resource}`;
    const ownedByCluster = { [`aws:ResourceTag/kubernetes.io/cluster/${args.clusterName}`]: 'owned' };
    const role = irsaRole(
      `${name}-karpenter`,
      {
        ...args,
        roleName: `${args.prefix}-karpenter`,
        namespace: 'kube-system',
        serviceAccount: 'karpenter',
        statements: [
          {
            // Describe and pricing calls have no resource-level permissions: AWS accepts only "*".
            Sid: 'ReadCapacity',
            Effect: 'Allow',
            Action: [
              'ec2:DescribeAvailabilityZones',
              'ec2:DescribeImages',
              'ec2:DescribeInstances',
              'ec2:DescribeInstanceTypeOfferings',
              'ec2:DescribeInstanceTypes',
              'ec2:DescribeLaunchTemplates',
              'ec2:DescribeSecurityGroups',
              'ec2:DescribeSpotPriceHistory',
              'ec2:DescribeSubnets',
              'pricing:GetProducts',
            ],
            Resource: '*',
          },
          {
            Sid: 'LaunchNodes',
            Effect: 'Allow',
            Action: ['ec2:RunInstances', 'ec2:CreateFleet', 'ec2:CreateLaunchTemplate', 'ec2:CreateTags'],
            Resource: [
              ec2('instance/*'),
              ec2('spot-instances-request/*'),
              ec2('volume/*'),
              ec2('network-interface/*'),
              ec2('launch-template/*'),
              ec2('fleet/*'),
              ec2('subnet/*'),
              ec2('security-group/*'),
              anyAccountEc2('image/*'),
              anyAccountEc2('snapshot/*'),
            ],
          },
          {
            // Only what it tagged as this cluster's: Karpenter never terminates other instances.
            Sid: 'RemoveOwnNodes',
            Effect: 'Allow',
            Action: ['ec2:TerminateInstances', 'ec2:DeleteLaunchTemplate'],
            Resource: [ec2('instance/*'), ec2('launch-template/*')],
            Condition: { StringEquals: ownedByCluster },
          },
          {
            Sid: 'PassNodeRole',
            Effect: 'Allow',
            Action: 'iam:PassRole',
            Resource: args.nodeRoleArn,
            Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
          },
          {
            // Karpenter v1 creates the instance profile of its EC2NodeClass itself, named <cluster>_<hash>.
            Sid: 'ManageInstanceProfiles',
            Effect: 'Allow',
            Action: [
              'iam:AddRoleToInstanceProfile',
              'iam:CreateInstanceProfile',
              'iam:DeleteInstanceProfile',
              'iam:GetInstanceProfile',
              'iam:RemoveRoleFromInstanceProfile',
              'iam:TagInstanceProfile',
            ],
            Resource: pulumi.interpolate`arn:aws:iam::${args.accountId}:instance-profile/${args.clusterName}_*`,
          },
          {
            Sid: 'ReadNodeImages',
            Effect: 'Allow',
            Action: 'ssm:GetParameter',
            Resource: `arn:aws:ssm:${args.region}::parameter/aws/service/*`,
          },
          {
            Sid: 'FindCluster',
            Effect: 'Allow',
            Action: 'eks:DescribeCluster',
            Resource: pulumi.interpolate`arn:aws:eks:${args.region}:${args.accountId}:cluster/${args.clusterName}`,
          },
          {
            Sid: 'ReadInterruptions',
            Effect: 'Allow',
            Action: ['sqs:DeleteMessage', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'],
            Resource: queue.arn,
          },
        ],
      },
      parent,
    );

    const karpenter = new k8s.helm.v3.Release(
      `${name}-karpenter`,
      {
        name: 'karpenter',
        chart: 'oci://public.ecr.aws/karpenter/karpenter',
        version: versions.karpenter,
        namespace: 'kube-system',
        values: {
          serviceAccount: { name: 'karpenter', annotations: { 'eks.amazonaws.com/role-arn': role.arn } },
          settings: {
            clusterName: args.clusterName,
            interruptionQueue: queue.name,
          },
          // Karpenter runs on the managed node group, never on nodes it manages itself.
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'karpenter.sh/nodepool', operator: 'DoesNotExist' }] },
                ],
              },
            },
          },
        },
      },
      k8sOpts,
    );

    const nodeClass = new k8s.apiextensions.CustomResource(
      `${name}-node-class`,
      {
        apiVersion: 'karpenter.k8s.aws/v1',
        kind: 'EC2NodeClass',
        metadata: { name: nodePoolName },
        spec: {
          role: args.nodeRoleName,
          amiSelectorTerms: [{ alias: 'al2023@latest' }],
          subnetSelectorTerms: [{ tags: { 'kubernetes.io/role/internal-elb': '1' } }],
          securityGroupSelectorTerms: [{ id: args.nodeSecurityGroupId }],
          // As the managed node group: IMDSv2 only, one hop (pods cannot borrow the node role).
          metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 },
          blockDeviceMappings: [
            { deviceName: '/dev/xvda', ebs: { volumeSize: '50Gi', volumeType: 'gp3', encrypted: true } },
          ],
        },
      },
      { ...k8sOpts, dependsOn: [karpenter] },
    );
    new k8s.apiextensions.CustomResource(
      `${name}-node-pool`,
      {
        apiVersion: 'karpenter.sh/v1',
        kind: 'NodePool',
        metadata: { name: nodePoolName },
        spec: {
          template: {
            spec: {
              nodeClassRef: { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: nodePoolName },
              requirements: [
                { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] },
                { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
                {
                  key: 'node.kubernetes.io/instance-type',
                  operator: 'In',
                  values: args.options.nodeInstanceTypes,
                },
              ],
              expireAfter: '720h',
            },
          },
          // The bound on what autoscaling may add: cores across all Karpenter nodes.
          limits: { cpu: String(args.options.autoscaledCpuLimit) },
          disruption: { consolidationPolicy: 'WhenEmptyOrUnderutilized', consolidateAfter: '5m' },
        },
      },
      { ...k8sOpts, dependsOn: [nodeClass] },
    );

    this.karpenterRoleArn = role.arn;
    this.interruptionQueueName = queue.name;
    this.registerOutputs({ karpenterRoleArn: this.karpenterRoleArn });
  }
}
