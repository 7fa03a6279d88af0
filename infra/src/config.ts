import * as pulumi from '@pulumi/pulumi';

/** How many NAT gateways the network gets: one shared (dev) or one per availability zone (prod). */
export type NatGatewayStrategy = 'single' | 'perAz';

export interface NetworkConfig {
  /** VPC CIDR block; a /16 leaves room for three /20 subnets per tier. */
  vpcCidr: string;
  /** Exactly three availability zones of the stack's region. */
  availabilityZones: string[];
  natGateways: NatGatewayStrategy;
}

export interface ClusterConfig {
  kubernetesVersion: string;
  nodeInstanceTypes: string[];
  nodeMinSize: number;
  nodeDesiredSize: number;
  nodeMaxSize: number;
  nodeDiskSizeGb: number;
  /** CIDRs allowed to reach the public Kubernetes API endpoint (IAM authentication still applies). */
  publicAccessCidrs: string[];
  /** Namespace the ingesta chart is released into (Pulumi creates it). */
  appNamespace: string;
  /** Helm release name of the chart: its service accounts are `<release>-api` and `<release>-consumer`. */
  appRelease: string;
  /** Install KEDA (the chart's ScaledObject scales the consumer on queue depth). */
  keda: boolean;
  /** Install kube-prometheus-stack (the chart's ServiceMonitor, PrometheusRule and dashboards). */
  kubePrometheusStack: boolean;
  /** Install the External Secrets Operator and its ClusterSecretStore (the chart's database ExternalSecret). */
  externalSecrets: boolean;
  /** Cores Karpenter may add across all the nodes it launches (its NodePool limit). */
  autoscaledCpuLimit: number;
  chartVersions: {
    awsLoadBalancerController: string;
    keda: string;
    kubePrometheusStack: string;
    externalSecrets: string;
    metricsServer: string;
    karpenter: string;
  };
}

export interface DatabaseConfig {
  /** PostgreSQL major version, 16 or 17. */
  engineVersion: string;
  instanceClass: string;
  allocatedStorageGb: number;
  maxAllocatedStorageGb: number;
  databaseName: string;
  masterUsername: string;
  multiAz: boolean;
  deletionProtection: boolean;
  performanceInsights: boolean;
  backupRetentionDays: number;
  /**
   * sslmode of the DATABASE_URL handed to the pods; rds.force_ssl refuses plaintext either way.
   * verify-full (the default) checks the certificate against the RDS CA bundle in the image, and
   * the host name.
   */
  sslMode: string;
}

export interface EdgeConfig {
  /** JWT issuer the API Gateway authorizer trusts (also AUTH_ISSUER of the API). */
  issuer: string;
  /** Audience the tokens must carry (also AUTH_AUDIENCE). */
  audience: string;
  /** JSON Web Key Set of the issuer (AUTH_JWKS_URL of the API). */
  jwksUrl: string;
  /** OAuth 2.0 token endpoint for client-credentials grants (used by the deploy smoke test). */
  tokenUrl: string;
  throttlingBurstLimit: number;
  throttlingRateLimit: number;
  accessLogRetentionDays: number;
}

export interface AlarmsConfig {
  /** Paged on `page` alarms: e-mail addresses or https:// URLs (a pager's CloudWatch integration). */
  pageSubscriptions: string[];
  /** Told of `ticket` alarms: e-mail addresses or https:// URLs. */
  ticketSubscriptions: string[];
}

export interface GithubConfig {
  /** `owner/name` of the repository whose workflows may assume the deploy role. */
  repository: string;
  /** Branches whose workflow runs may assume the deploy role. */
  branches: string[];
  /** GitHub environments whose jobs may assume it (a job bound to an environment presents that, not the branch). */
  environments: string[];
  /** ARN of an existing token.actions.githubusercontent.com OIDC provider; empty creates one. */
  oidcProviderArn: string;
  /** S3 bucket of a self-managed Pulumi backend the deploy reads stack outputs from; empty for Pulumi Cloud. */
  stateBucket: string;
  /**
   * ARN of the ECR repository this stack's images are promoted from (staging's, for production);
   * empty when the stack builds its own. The deploy role may pull from it, nothing more.
   */
  promotionSourceRepositoryArn: string;
}

export interface ReplayConfig {
  /**
   * ARNs of the SQS queues and SNS topics replays may send to: the consumer role may send there and
   * nowhere else, and the chart's allow-list (`replay.targets`) is made from the same list.
   */
  targetArns: string[];
}

export interface StackConfig {
  /** Prefix of every resource name: `ingesta-<stack>`. */
  prefix: string;
  stack: string;
  /** Whether the stack carries production protections (Multi-AZ, deletion protection, NAT per AZ...). */
  production: boolean;
  network: NetworkConfig;
  cluster: ClusterConfig;
  database: DatabaseConfig;
  edge: EdgeConfig;
  alarms: AlarmsConfig;
  github: GithubConfig;
  replay: ReplayConfig;
}

const supportedPostgresMajors = ['16', '17'];

function fail(message: string): never {
  throw new Error(`stack config: ${message}`);
}

/** Reads and validates the `ingesta:*` stack config; every value a stack file may set is listed here. */
export function readStackConfig(): StackConfig {
  const config = new pulumi.Config('ingesta');
  const stack = pulumi.getStack();
  const production = config.getBoolean('production') ?? false;

  const network = config.requireObject<Partial<NetworkConfig>>('network');
  const availabilityZones = network.availabilityZones ?? [];
  if (availabilityZones.length !== 3) fail('network.availabilityZones must list exactly three zones');
  const natGateways = network.natGateways ?? (production ? 'perAz' : 'single');
  if (natGateways !== 'single' && natGateways !== 'perAz')
    fail('network.natGateways must be single or perAz');

  const cluster = config.getObject<Partial<ClusterConfig>>('cluster') ?? {};
  const database = config.getObject<Partial<DatabaseConfig>>('database') ?? {};
  const engineVersion = database.engineVersion ?? '17';
  if (!supportedPostgresMajors.includes(engineVersion)) fail('database.engineVersion must be 16 or 17');

  const edge = config.requireObject<Partial<EdgeConfig>>('edge');
  const github = config.requireObject<Partial<GithubConfig>>('github');
  if (!/^[\w.-]+\/[\w.-]+$/.test(github.repository ?? '')) fail('github.repository must be owner/name');
  const alarms = config.getObject<Partial<AlarmsConfig>>('alarms') ?? {};
  const replay = config.getObject<Partial<ReplayConfig>>('replay') ?? {};
  const replayTargetArns = replay.targetArns ?? [];
  for (const arn of replayTargetArns) {
    if (!/^arn:aws[\w-]*:(?:sqs|sns):[\w-]+:\d{12}:[\w.-]+$/.test(arn)) {
      fail(`replay.targetArns: ${arn} is not an SQS queue or SNS topic ARN`);
    }
  }

  return {
    prefix: `ingesta-${stack}`,
    stack,
    production,
    network: {
      vpcCidr: network.vpcCidr ?? '10.40.0.0/16',
      availabilityZones,
      natGateways,
    },
    cluster: {
      kubernetesVersion: cluster.kubernetesVersion ?? '1.33',
      nodeInstanceTypes: cluster.nodeInstanceTypes ?? ['t3.large'],
      nodeMinSize: cluster.nodeMinSize ?? 2,
      nodeDesiredSize: cluster.nodeDesiredSize ?? 2,
      nodeMaxSize: cluster.nodeMaxSize ?? 4,
      nodeDiskSizeGb: cluster.nodeDiskSizeGb ?? 50,
      publicAccessCidrs: cluster.publicAccessCidrs ?? ['0.0.0.0/0'],
      appNamespace: cluster.appNamespace ?? 'ingesta',
      appRelease: cluster.appRelease ?? 'ingesta',
      keda: cluster.keda ?? true,
      kubePrometheusStack: cluster.kubePrometheusStack ?? true,
      externalSecrets: cluster.externalSecrets ?? true,
      autoscaledCpuLimit: cluster.autoscaledCpuLimit ?? (production ? 64 : 16),
      chartVersions: {
        awsLoadBalancerController: cluster.chartVersions?.awsLoadBalancerController ?? '1.14.0',
        keda: cluster.chartVersions?.keda ?? '2.17.0',
        kubePrometheusStack: cluster.chartVersions?.kubePrometheusStack ?? '75.0.0',
        externalSecrets: cluster.chartVersions?.externalSecrets ?? '0.18.2',
        metricsServer: cluster.chartVersions?.metricsServer ?? '3.12.2',
        karpenter: cluster.chartVersions?.karpenter ?? '1.5.0',
      },
    },
    database: {
      engineVersion,
      instanceClass: database.instanceClass ?? 'db.t4g.medium',
      allocatedStorageGb: database.allocatedStorageGb ?? 20,
      maxAllocatedStorageGb: database.maxAllocatedStorageGb ?? 100,
      databaseName: database.databaseName ?? 'ingesta',
      masterUsername: database.masterUsername ?? 'ingesta',
      multiAz: database.multiAz ?? production,
      deletionProtection: database.deletionProtection ?? production,
      performanceInsights: database.performanceInsights ?? production,
      backupRetentionDays: database.backupRetentionDays ?? (production ? 14 : 1),
      sslMode: database.sslMode ?? 'verify-full',
    },
    edge: {
      issuer: edge.issuer ?? fail('edge.issuer is required'),
      audience: edge.audience ?? fail('edge.audience is required'),
      jwksUrl: edge.jwksUrl ?? fail('edge.jwksUrl is required'),
      tokenUrl: edge.tokenUrl ?? fail('edge.tokenUrl is required'),
      throttlingBurstLimit: edge.throttlingBurstLimit ?? 200,
      throttlingRateLimit: edge.throttlingRateLimit ?? 100,
      accessLogRetentionDays: edge.accessLogRetentionDays ?? (production ? 90 : 14),
    },
    alarms: {
      pageSubscriptions: alarms.pageSubscriptions ?? [],
      ticketSubscriptions: alarms.ticketSubscriptions ?? [],
    },
    github: {
      repository: github.repository ?? '',
      branches: github.branches ?? ['main', 'develop'],
      environments: github.environments ?? [],
      oidcProviderArn: github.oidcProviderArn ?? '',
      stateBucket: github.stateBucket ?? '',
      promotionSourceRepositoryArn: github.promotionSourceRepositoryArn ?? '',
    },
    replay: { targetArns: replayTargetArns },
  };
}
