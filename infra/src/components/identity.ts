import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { GithubConfig } from '../config.ts';
import { irsaTrustPolicy, type PolicyStatement, policyDocument } from '../policy.ts';

export interface ClusterOidc {
  oidcProviderArn: pulumi.Input<string>;
  /** Issuer host and path without https://. */
  oidcIssuer: pulumi.Input<string>;
}

/**
 * An IAM role that exactly one Kubernetes service account assumes through IRSA, with its
 * permissions in one inline policy (so the role and what it may do read as one unit).
 */
export function irsaRole(
  name: string,
  args: ClusterOidc & {
    roleName: string;
    namespace: string;
    serviceAccount: string;
    statements: PolicyStatement[];
  },
  opts: pulumi.CustomResourceOptions,
): aws.iam.Role {
  const role = new aws.iam.Role(
    name,
    {
      name: args.roleName,
      assumeRolePolicy: irsaTrustPolicy(args),
      maxSessionDuration: 3600,
    },
    opts,
  );
  new aws.iam.RolePolicy(name, { role: role.name, policy: policyDocument(args.statements) }, opts);
  return role;
}

export interface WorkloadIdentityArgs extends ClusterOidc {
  prefix: string;
  namespace: string;
  /** Helm release name: the chart names service accounts `<release>-api` and `<release>-consumer`. */
  release: string;
  topicArn: pulumi.Input<string>;
  queueArn: pulumi.Input<string>;
  dlqArn: pulumi.Input<string>;
  queueKeyArn: pulumi.Input<string>;
  /** SQS queue and SNS topic ARNs replays may send to (stack config `replay.targetArns`). */
  replayTargetArns?: string[];
}

/** What a consumer may do for replays: send to each allowed target, nothing else. */
export function replayStatements(targetArns: readonly string[]): PolicyStatement[] {
  const queues = targetArns.filter((arn) => arn.split(':')[2] === 'sqs');
  const topics = targetArns.filter((arn) => arn.split(':')[2] === 'sns');
  return [
    ...(queues.length > 0
      ? [{ Sid: 'ReplayToQueues', Effect: 'Allow' as const, Action: 'sqs:SendMessage', Resource: queues }]
      : []),
    ...(topics.length > 0
      ? [{ Sid: 'ReplayToTopics', Effect: 'Allow' as const, Action: 'sns:Publish', Resource: topics }]
      : []),
  ];
}

/** The allow-list the chart gives the processes: queue URLs for SQS, ARNs for SNS. */
export function replayTargetsOf(targetArns: readonly string[]): string[] {
  return targetArns.map((arn) => {
    const [, partition, service, region, account, name] = arn.split(':');
    if (service !== 'sqs') return arn;
    const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
    return `https://sqs.${region}.${domain}/${account}/${name}`;
  });
}

/** IRSA roles of the two ingesta processes, each allowed exactly what its code calls. */
export class WorkloadIdentity extends pulumi.ComponentResource {
  readonly apiRoleArn: pulumi.Output<string>;
  readonly consumerRoleArn: pulumi.Output<string>;

  constructor(name: string, args: WorkloadIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:identity:WorkloadIdentity', name, {}, opts);
    const common = {
      oidcProviderArn: args.oidcProviderArn,
      oidcIssuer: args.oidcIssuer,
      namespace: args.namespace,
    };

    // The topic uses the AWS managed SNS key, so publishing needs no KMS permission of the caller.
    const api = irsaRole(
      `${name}-api`,
      {
        ...common,
        roleName: `${args.prefix}-api`,
        serviceAccount: `${args.release}-api`,
        statements: [
          { Sid: 'PublishEvents', Effect: 'Allow', Action: 'sns:Publish', Resource: args.topicArn },
        ],
      },
      { parent: this },
    );

    const consumer = irsaRole(
      `${name}-consumer`,
      {
        ...common,
        roleName: `${args.prefix}-consumer`,
        serviceAccount: `${args.release}-consumer`,
        statements: [
          {
            Sid: 'ConsumeEvents',
            Effect: 'Allow',
            Action: [
              'sqs:ReceiveMessage',
              'sqs:DeleteMessage',
              'sqs:ChangeMessageVisibility',
              'sqs:GetQueueAttributes',
            ],
            Resource: args.queueArn,
          },
          {
            Sid: 'MovePoisonMessagesToDlq',
            Effect: 'Allow',
            Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
            Resource: args.dlqArn,
          },
          ...replayStatements(args.replayTargetArns ?? []),
          {
            // Receiving from a KMS-encrypted queue decrypts; sending to the DLQ encrypts.
            Sid: 'UseQueueKey',
            Effect: 'Allow',
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: args.queueKeyArn,
          },
        ],
      },
      { parent: this },
    );

    this.apiRoleArn = api.arn;
    this.consumerRoleArn = consumer.arn;
    this.registerOutputs({ apiRoleArn: this.apiRoleArn, consumerRoleArn: this.consumerRoleArn });
  }
}

export interface DeployIdentityArgs {
  prefix: string;
  stack: string;
  github: GithubConfig;
  accountId: pulumi.Input<string>;
  region: string;
  clusterName: string;
  repositoryArn: pulumi.Input<string>;
}

const githubIssuer = 'token.actions.githubusercontent.com';

/** The `sub` claims GitHub issues for the configured branches and environments of one repository. */
export function githubSubjects(github: GithubConfig): string[] {
  return [
    ...github.branches.map((branch) => `repo:${github.repository}:ref:refs/heads/${branch}`),
    ...github.environments.map((environment) => `repo:${github.repository}:environment:${environment}`),
  ];
}

/**
 * The role GitHub Actions assumes through OIDC to ship a release: push the image to ECR, find the
 * EKS cluster (Kubernetes rights come from the cluster's access entry), read the stack outputs.
 * Only workflow runs of the configured repository's branches (or environments) may assume it.
 */
export class DeployIdentity extends pulumi.ComponentResource {
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: DeployIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:identity:DeployIdentity', name, {}, opts);
    const parent = { parent: this };

    // One provider per account and issuer: reuse the account's when the stack config names it.
    const providerArn = args.github.oidcProviderArn
      ? pulumi.output(args.github.oidcProviderArn)
      : new aws.iam.OpenIdConnectProvider(
          `${name}-github`,
          { url: `https://${githubIssuer}`, clientIdLists: ['sts.amazonaws.com'] },
          parent,
        ).arn;

    const role = new aws.iam.Role(
      `${name}-github`,
      {
        name: `${args.prefix}-github-deploy`,
        maxSessionDuration: 3600,
        assumeRolePolicy: policyDocument([
          {
            Effect: 'Allow',
            Action: 'sts:AssumeRoleWithWebIdentity',
            Principal: { Federated: providerArn },
            Condition: {
              StringEquals: {
                [`${githubIssuer}:aud`]: 'sts.amazonaws.com',
                [`${githubIssuer}:sub`]: githubSubjects(args.github),
              },
            },
          },
        ]),
      },
      parent,
    );

    const clusterArn = pulumi.interpolate`arn:aws:eks:${args.region}:${args.accountId}:cluster/${args.clusterName}`;
    const statements: PolicyStatement[] = [
      {
        // GetAuthorizationToken has no resource-level permissions: AWS accepts only "*".
        Sid: 'LogInToEcr',
        Effect: 'Allow',
        Action: 'ecr:GetAuthorizationToken',
        Resource: '*',
      },
      {
        Sid: 'PushImages',
        Effect: 'Allow',
        Action: [
          'ecr:BatchCheckLayerAvailability',
          'ecr:InitiateLayerUpload',
          'ecr:UploadLayerPart',
          'ecr:CompleteLayerUpload',
          'ecr:PutImage',
          'ecr:BatchGetImage',
          'ecr:GetDownloadUrlForLayer',
          'ecr:DescribeImages',
        ],
        Resource: args.repositoryArn,
      },
      { Sid: 'FindCluster', Effect: 'Allow', Action: 'eks:DescribeCluster', Resource: clusterArn },
    ];
    if (args.github.promotionSourceRepositoryArn) {
      // Production deploys the image staging built: it reads that repository, never writes it.
      // (Across accounts, the source repository's policy must also allow this role.)
      statements.push({
        Sid: 'PullPromotedImages',
        Effect: 'Allow',
        Action: ['ecr:BatchGetImage', 'ecr:DescribeImages', 'ecr:GetDownloadUrlForLayer'],
        Resource: args.github.promotionSourceRepositoryArn,
      });
    }
    if (args.github.stateBucket) {
      // A self-managed backend: `pulumi stack output` reads this stack's checkpoint, nothing else.
      const bucket = `arn:aws:s3:::${args.github.stateBucket}`;
      statements.push(
        {
          Sid: 'ReadStackState',
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: [`${bucket}/.pulumi/meta.yaml`, `${bucket}/.pulumi/stacks/ingesta/${args.stack}.json`],
        },
        {
          Sid: 'ListStackState',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: bucket,
          Condition: { StringLike: { 's3:prefix': '.pulumi/*' } },
        },
      );
    }
    new aws.iam.RolePolicy(`${name}-github`, { role: role.name, policy: policyDocument(statements) }, parent);

    this.roleArn = role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}
