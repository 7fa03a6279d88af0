import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ClusterConfig } from '../config.ts';
import { kubePrometheusStackValues, monitoringNamespace, monitoringRelease } from '../monitoring.ts';
import { type ClusterOidc, irsaRole } from './identity.ts';

export interface ClusterAddonsArgs extends ClusterOidc {
  prefix: string;
  region: string;
  clusterName: string;
  vpcId: pulumi.Input<string>;
  provider: k8s.Provider;
  options: Pick<
    ClusterConfig,
    'keda' | 'kubePrometheusStack' | 'externalSecrets' | 'chartVersions' | 'appNamespace'
  >;
  /** The one target group the controller registers pods in (through the chart's TargetGroupBinding). */
  targetGroupArn: pulumi.Input<string>;
  /** Queue KEDA reads the depth of. */
  queueArn: pulumi.Input<string>;
  queueKeyArn: pulumi.Input<string>;
  /** Secrets Manager secret holding DATABASE_URL, and its key: the only secret External Secrets may read. */
  databaseUrlSecretArn: pulumi.Input<string>;
  databaseKeyArn: pulumi.Input<string>;
}

/** Name of the ClusterSecretStore the chart's ExternalSecret refers to (database.externalSecret.secretStoreRef). */
export const secretStoreName = 'aws-secrets-manager';

/**
 * Controllers the chart relies on, each from its pinned Helm chart and with its own IRSA role:
 * the AWS Load Balancer Controller (always: it binds API pods to the NLB target group), and as
 * stack options KEDA, kube-prometheus-stack and the External Secrets Operator.
 */
export class ClusterAddons extends pulumi.ComponentResource {
  readonly loadBalancerControllerRoleArn: pulumi.Output<string>;
  readonly kedaRoleArn: pulumi.Output<string> | undefined;
  readonly externalSecretsRoleArn: pulumi.Output<string> | undefined;

  constructor(name: string, args: ClusterAddonsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:cluster:ClusterAddons', name, {}, opts);
    const oidc = { oidcProviderArn: args.oidcProviderArn, oidcIssuer: args.oidcIssuer };
    const k8sOpts = { parent: this, provider: args.provider };
    const versions = args.options.chartVersions;

    // The controller only reconciles TargetGroupBindings here (it creates no load balancers), so it
    // gets the read calls it makes plus target registration on the one target group. Node security
    // group rules for the NLB are Pulumi's (edge component), not the controller's.
    const lbcRole = irsaRole(
      `${name}-lbc`,
      {
        ...oidc,
        roleName: `${args.prefix}-aws-load-balancer-controller`,
        namespace: 'kube-system',
        serviceAccount: 'aws-load-balancer-controller',
        statements: [
          {
            // Describe calls have no resource-level permissions: AWS accepts only "*".
            Sid: 'ReadLoadBalancingAndNetwork',
            Effect: 'Allow',
            Action: [
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
            ],
            Resource: '*',
          },
          {
            Sid: 'RegisterApiPods',
            Effect: 'Allow',
            Action: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'],
            Resource: args.targetGroupArn,
          },
        ],
      },
      { parent: this },
    );
    new k8s.helm.v3.Release(
      `${name}-lbc`,
      {
        name: 'aws-load-balancer-controller',
        chart: 'aws-load-balancer-controller',
        version: versions.awsLoadBalancerController,
        repositoryOpts: { repo: 'https://aws.github.io/eks-charts' },
        namespace: 'kube-system',
        values: {
          clusterName: args.clusterName,
          // IMDS is out of the pods' reach (hop limit 1): region and VPC are given, not discovered.
          region: args.region,
          vpcId: args.vpcId,
          replicaCount: 2,
          serviceAccount: {
            create: true,
            name: 'aws-load-balancer-controller',
            annotations: { 'eks.amazonaws.com/role-arn': lbcRole.arn },
          },
          // Services of type LoadBalancer stay untouched; no WAF/Shield lookups.
          enableServiceMutatorWebhook: false,
          enableShield: false,
          enableWaf: false,
          enableWafv2: false,
        },
      },
      k8sOpts,
    );
    this.loadBalancerControllerRoleArn = lbcRole.arn;

    if (args.options.keda) {
      const kedaRole = irsaRole(
        `${name}-keda`,
        {
          ...oidc,
          roleName: `${args.prefix}-keda-operator`,
          namespace: 'keda',
          serviceAccount: 'keda-operator',
          statements: [
            {
              Sid: 'ReadQueueDepth',
              Effect: 'Allow',
              Action: 'sqs:GetQueueAttributes',
              Resource: args.queueArn,
            },
          ],
        },
        { parent: this },
      );
      new k8s.helm.v3.Release(
        `${name}-keda`,
        {
          name: 'keda',
          chart: 'keda',
          version: versions.keda,
          repositoryOpts: { repo: 'https://kedacore.github.io/charts' },
          namespace: 'keda',
          createNamespace: true,
          values: { podIdentity: { aws: { irsa: { enabled: true, roleArn: kedaRole.arn } } } },
        },
        k8sOpts,
      );
      this.kedaRoleArn = kedaRole.arn;
    }

    if (args.options.kubePrometheusStack) {
      new k8s.helm.v3.Release(
        `${name}-monitoring`,
        {
          name: monitoringRelease,
          chart: 'kube-prometheus-stack',
          version: versions.kubePrometheusStack,
          repositoryOpts: { repo: 'https://prometheus-community.github.io/helm-charts' },
          namespace: monitoringNamespace,
          createNamespace: true,
          values: kubePrometheusStackValues,
        },
        k8sOpts,
      );
    }

    if (args.options.externalSecrets) {
      const esoRole = irsaRole(
        `${name}-external-secrets`,
        {
          ...oidc,
          roleName: `${args.prefix}-external-secrets`,
          namespace: 'external-secrets',
          serviceAccount: 'external-secrets',
          statements: [
            {
              Sid: 'ReadDatabaseUrl',
              Effect: 'Allow',
              Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
              Resource: args.databaseUrlSecretArn,
            },
            {
              Sid: 'DecryptDatabaseUrl',
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: args.databaseKeyArn,
            },
          ],
        },
        { parent: this },
      );
      const eso = new k8s.helm.v3.Release(
        `${name}-external-secrets`,
        {
          name: 'external-secrets',
          chart: 'external-secrets',
          version: versions.externalSecrets,
          repositoryOpts: { repo: 'https://charts.external-secrets.io' },
          namespace: 'external-secrets',
          createNamespace: true,
          values: {
            installCRDs: true,
            serviceAccount: {
              name: 'external-secrets',
              annotations: { 'eks.amazonaws.com/role-arn': esoRole.arn },
            },
          },
        },
        k8sOpts,
      );
      // Only the app namespace may read through this store (and the role reads one secret only).
      new k8s.apiextensions.CustomResource(
        `${name}-secret-store`,
        {
          apiVersion: 'external-secrets.io/v1',
          kind: 'ClusterSecretStore',
          metadata: { name: secretStoreName },
          spec: {
            provider: { aws: { service: 'SecretsManager', region: args.region } },
            conditions: [{ namespaces: [args.options.appNamespace] }],
          },
        },
        { ...k8sOpts, dependsOn: [eso] },
      );
      this.externalSecretsRoleArn = esoRole.arn;
    }

    this.registerOutputs({ loadBalancerControllerRoleArn: this.loadBalancerControllerRoleArn });
  }
}
