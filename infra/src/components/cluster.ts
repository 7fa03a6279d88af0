import * as aws from '@pulumi/aws';
import * as eks from '@pulumi/eks';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClusterConfig } from '../config.ts';
import { policyDocument } from '../policy.ts';

export interface ClusterArgs extends ClusterConfig {
  prefix: string;
  accountId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
  privateSubnetIds: pulumi.Input<string>[];
  /** Role GitHub Actions deploys with: gets Kubernetes rights in the app namespace only. */
  deployRoleArn: pulumi.Input<string>;
}

/** Kubernetes group the deploy role is mapped to; a Role in the app namespace grants it the release. */
export const deployersGroup = 'ingesta-deployers';

/**
 * API groups the chart's objects belong to: core, workloads, autoscaling, network policies, and the
 * CRDs of the AWS Load Balancer Controller, KEDA, the Prometheus Operator and External Secrets.
 */
export const deployerApiGroups = [
  '',
  'apps',
  'batch',
  'policy',
  'autoscaling',
  'networking.k8s.io',
  'elbv2.k8s.aws',
  'keda.sh',
  'monitoring.coreos.com',
  'external-secrets.io',
];

/**
 * EKS with a managed node group in the private subnets. Kubernetes secrets are envelope-encrypted
 * with a KMS key, nodes run from a launch template with encrypted volumes and IMDSv2 limited to one
 * hop (pods cannot borrow the node role: they get IRSA roles from the OIDC provider), authentication
 * is by access entries only, and control plane logs go to CloudWatch.
 */
export class Cluster extends pulumi.ComponentResource {
  readonly name: string;
  readonly kubeconfig: pulumi.Output<string>;
  readonly oidcProviderArn: pulumi.Output<string>;
  readonly oidcIssuer: pulumi.Output<string>;
  /** The EKS-created cluster security group: managed nodes and (with the VPC CNI) their pods carry it. */
  readonly nodeSecurityGroupId: pulumi.Output<string>;
  readonly provider: k8s.Provider;
  readonly appNamespace: string;
  /** Role of the nodes; Karpenter launches its nodes with it too (the node group's access entry covers them). */
  readonly nodeRoleName: pulumi.Output<string>;
  readonly nodeRoleArn: pulumi.Output<string>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:cluster:Cluster', name, {}, opts);
    const parent = { parent: this };
    this.name = args.prefix;
    this.appNamespace = args.appNamespace;

    const secretsKey = new aws.kms.Key(
      `${name}-secrets`,
      {
        description: `${args.prefix}: envelope encryption of Kubernetes secrets`,
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
        ]),
      },
      parent,
    );

    const cluster = new eks.Cluster(
      name,
      {
        name: args.prefix,
        version: args.kubernetesVersion,
        vpcId: args.vpcId,
        privateSubnetIds: args.privateSubnetIds,
        nodeAssociatePublicIpAddress: false,
        skipDefaultNodeGroup: true,
        // Nodes and pods then carry the EKS-created cluster security group (nodeSecurityGroupId).
        skipDefaultSecurityGroups: true,
        createOidcProvider: true,
        authenticationMode: eks.AuthenticationMode.Api,
        accessEntries: {
          deploy: {
            principalArn: args.deployRoleArn,
            kubernetesGroups: [deployersGroup],
          },
        },
        endpointPrivateAccess: true,
        endpointPublicAccess: true,
        publicAccessCidrs: args.publicAccessCidrs,
        encryptionConfigKeyArn: secretsKey.arn,
        enabledClusterLogTypes: ['api', 'audit', 'authenticator'],
        // The VPC CNI's network policy agent: without it NetworkPolicies are stored but not enforced.
        vpcCniOptions: { enableNetworkPolicy: true },
      },
      parent,
    );

    const nodeRole = new aws.iam.Role(
      `${name}-nodes`,
      {
        name: `${args.prefix}-nodes`,
        assumeRolePolicy: policyDocument([
          { Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'ec2.amazonaws.com' } },
        ]),
      },
      parent,
    );
    const nodePolicies = [
      'arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy',
      'arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy',
      'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly',
    ];
    const attachments = nodePolicies.map(
      (policyArn, i) =>
        new aws.iam.RolePolicyAttachment(`${name}-nodes-${i}`, { role: nodeRole.name, policyArn }, parent),
    );

    const launchTemplate = new aws.ec2.LaunchTemplate(
      `${name}-nodes`,
      {
        namePrefix: `${args.prefix}-nodes-`,
        updateDefaultVersion: true,
        blockDeviceMappings: [
          {
            deviceName: '/dev/xvda',
            ebs: {
              volumeSize: args.nodeDiskSizeGb,
              volumeType: 'gp3',
              encrypted: 'true',
              deleteOnTermination: 'true',
            },
          },
        ],
        metadataOptions: {
          httpEndpoint: 'enabled',
          httpTokens: 'required',
          httpPutResponseHopLimit: 1,
        },
      },
      parent,
    );

    new eks.ManagedNodeGroup(
      `${name}-nodes`,
      {
        cluster,
        nodeGroupName: `${args.prefix}-nodes`,
        nodeRole,
        subnetIds: args.privateSubnetIds,
        instanceTypes: args.nodeInstanceTypes,
        amiType: 'AL2023_x86_64_STANDARD',
        capacityType: 'ON_DEMAND',
        scalingConfig: {
          minSize: args.nodeMinSize,
          desiredSize: args.nodeDesiredSize,
          maxSize: args.nodeMaxSize,
        },
        launchTemplate: {
          id: launchTemplate.id,
          version: pulumi.interpolate`${launchTemplate.latestVersion}`,
        },
      },
      { parent: this, dependsOn: attachments },
    );

    const provider = new k8s.Provider(
      `${name}-k8s`,
      { kubeconfig: cluster.kubeconfigJson, enableServerSideApply: true },
      parent,
    );

    const namespace = new k8s.core.v1.Namespace(
      `${name}-app`,
      {
        metadata: {
          name: args.appNamespace,
          labels: {
            // Pods of the release must meet the restricted Pod Security Standard.
            'pod-security.kubernetes.io/enforce': 'restricted',
            // The AWS Load Balancer Controller adds a readiness gate to pods behind a
            // TargetGroupBinding: a rollout waits until the NLB reports the new pod healthy.
            'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled',
          },
        },
      },
      { parent: this, provider },
    );

    // What the deploy role may do: manage the release's objects in the app namespace, nothing else.
    const deployerRole = new k8s.rbac.v1.Role(
      `${name}-deployers`,
      {
        metadata: { name: deployersGroup, namespace: namespace.metadata.name },
        rules: [{ apiGroups: deployerApiGroups, resources: ['*'], verbs: ['*'] }],
      },
      { parent: this, provider },
    );
    new k8s.rbac.v1.RoleBinding(
      `${name}-deployers`,
      {
        metadata: { name: deployersGroup, namespace: namespace.metadata.name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: deployerRole.metadata.name },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: deployersGroup }],
      },
      { parent: this, provider },
    );

    this.kubeconfig = pulumi.secret(cluster.kubeconfigJson);
    this.oidcProviderArn = cluster.oidcProviderArn;
    this.oidcIssuer = cluster.oidcIssuer;
    this.nodeSecurityGroupId = cluster.nodeSecurityGroupId;
    this.provider = provider;
    this.nodeRoleName = nodeRole.name;
    this.nodeRoleArn = nodeRole.arn;
    this.registerOutputs({ name: this.name, oidcProviderArn: this.oidcProviderArn });
  }
}
