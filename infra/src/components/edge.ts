import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { EdgeConfig } from '../config.ts';
import { policyDocument } from '../policy.ts';

export interface EdgeArgs extends EdgeConfig {
  prefix: string;
  production: boolean;
  region: string;
  accountId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
  vpcCidr: pulumi.Input<string>;
  privateSubnetIds: pulumi.Input<string>[];
  /** Security group of the nodes and pods the NLB sends to. */
  nodeSecurityGroupId: pulumi.Input<string>;
}

/** The API's ports (chart: api.port and api.adminPort). */
export const apiPorts = { http: 8080, admin: 9464 };

/**
 * Deregistration delay of the API target group, in seconds. An NLB IP target keeps receiving new
 * connections for about 120 s after deregistration starts, whatever this delay (measured in
 * aws-load-balancer-controller #2366 and #3270), so API pods sleep 130 s in preStop, then drain
 * for up to 20 s (SHUTDOWN_TIMEOUT_MS). The target stays draining for both (130 + 20 = 150 s):
 * the NLB never drops a pod that still answers. The chart checks its values against this output.
 */
export const apiDeregistrationDelaySec = 150;

/** Routes of the public API and the scope each requires (DESIGN.md; the API checks them again). */
export const apiRoutes = [
  { routeKey: 'POST /v1/events', scopes: ['events:write'] },
  { routeKey: 'GET /v1/events', scopes: ['events:read'] },
  { routeKey: 'GET /v1/events/{source}/{id}', scopes: ['events:read'] },
  { routeKey: 'GET /v1/stats', scopes: ['events:read'] },
];

/** One JSON object per request in the access log (API Gateway $context variables). */
export const accessLogFormat = JSON.stringify({
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integration.error',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  authorizerError: '$context.authorizer.error',
  clientId: '$context.authorizer.claims.client_id',
});

/**
 * The public edge: an API Gateway HTTP API with a JWT authorizer on every route, reaching the API
 * pods over a VPC link -> internal NLB (TCP 80) -> target group (type ip, port 8080, health check
 * GET /readyz on 9464). Pulumi owns the NLB, listener and target group; the chart's
 * TargetGroupBinding registers the pods. Security groups chain VPC link -> NLB -> pods.
 */
export class Edge extends pulumi.ComponentResource {
  readonly apiId: pulumi.Output<string>;
  readonly apiEndpoint: pulumi.Output<string>;
  readonly stageName: string;
  readonly targetGroupArn: pulumi.Output<string>;
  /** CloudWatch dimensions of the NLB and its target group (AWS/NetworkELB). */
  readonly loadBalancerArnSuffix: pulumi.Output<string>;
  readonly targetGroupArnSuffix: pulumi.Output<string>;
  readonly accessLogGroupName: pulumi.Output<string>;

  constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:edge:Edge', name, {}, opts);
    const parent = { parent: this };

    const vpcLinkSecurityGroup = new aws.ec2.SecurityGroup(
      `${name}-vpc-link`,
      {
        name: `${args.prefix}-vpc-link`,
        vpcId: args.vpcId,
        description: 'API Gateway VPC link: out to the NLB listener only',
        egress: [
          {
            protocol: 'tcp',
            fromPort: 80,
            toPort: 80,
            cidrBlocks: [args.vpcCidr],
            description: 'NLB listener',
          },
        ],
      },
      parent,
    );
    const nlbSecurityGroup = new aws.ec2.SecurityGroup(
      `${name}-nlb`,
      {
        name: `${args.prefix}-nlb`,
        vpcId: args.vpcId,
        description: 'Internal NLB: in from the VPC link, out to the API pods',
        ingress: [
          {
            protocol: 'tcp',
            fromPort: 80,
            toPort: 80,
            securityGroups: [vpcLinkSecurityGroup.id],
            description: 'From the API Gateway VPC link',
          },
        ],
        egress: [
          {
            protocol: 'tcp',
            fromPort: apiPorts.http,
            toPort: apiPorts.http,
            cidrBlocks: [args.vpcCidr],
            description: 'API pods',
          },
          {
            protocol: 'tcp',
            fromPort: apiPorts.admin,
            toPort: apiPorts.admin,
            cidrBlocks: [args.vpcCidr],
            description: 'API pods health checks',
          },
        ],
      },
      parent,
    );
    for (const [portName, port] of Object.entries(apiPorts)) {
      new aws.ec2.SecurityGroupRule(
        `${name}-nodes-from-nlb-${portName}`,
        {
          type: 'ingress',
          securityGroupId: args.nodeSecurityGroupId,
          sourceSecurityGroupId: nlbSecurityGroup.id,
          protocol: 'tcp',
          fromPort: port,
          toPort: port,
          description: `ingesta API ${portName} port from the internal NLB`,
        },
        parent,
      );
    }

    const loadBalancer = new aws.lb.LoadBalancer(
      `${name}-nlb`,
      {
        name: `${args.prefix}-api`,
        loadBalancerType: 'network',
        internal: true,
        subnets: args.privateSubnetIds,
        securityGroups: [nlbSecurityGroup.id],
        enableCrossZoneLoadBalancing: true,
        enableDeletionProtection: args.production,
      },
      parent,
    );
    const targetGroup = new aws.lb.TargetGroup(
      `${name}-api`,
      {
        name: `${args.prefix}-api`,
        vpcId: args.vpcId,
        targetType: 'ip',
        protocol: 'TCP',
        port: apiPorts.http,
        // The target stays draining until its pod has exited (see apiDeregistrationDelaySec).
        deregistrationDelay: apiDeregistrationDelaySec,
        healthCheck: {
          protocol: 'HTTP',
          port: String(apiPorts.admin),
          path: '/readyz',
          matcher: '200',
          interval: 10,
          healthyThreshold: 2,
          unhealthyThreshold: 2,
        },
      },
      parent,
    );
    const listener = new aws.lb.Listener(
      `${name}-api`,
      {
        loadBalancerArn: loadBalancer.arn,
        port: 80,
        protocol: 'TCP',
        defaultActions: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
      },
      parent,
    );

    const vpcLink = new aws.apigatewayv2.VpcLink(
      `${name}-vpc-link`,
      { name: args.prefix, subnetIds: args.privateSubnetIds, securityGroupIds: [vpcLinkSecurityGroup.id] },
      parent,
    );

    const api = new aws.apigatewayv2.Api(
      `${name}-api`,
      { name: args.prefix, protocolType: 'HTTP', description: 'ingesta public API' },
      parent,
    );
    const authorizer = new aws.apigatewayv2.Authorizer(
      `${name}-jwt`,
      {
        apiId: api.id,
        name: 'jwt',
        authorizerType: 'JWT',
        identitySources: ['$request.header.Authorization'],
        jwtConfiguration: { issuer: args.issuer, audiences: [args.audience] },
      },
      parent,
    );
    const integration = new aws.apigatewayv2.Integration(
      `${name}-nlb`,
      {
        apiId: api.id,
        integrationType: 'HTTP_PROXY',
        integrationMethod: 'ANY',
        integrationUri: listener.arn,
        connectionType: 'VPC_LINK',
        connectionId: vpcLink.id,
        payloadFormatVersion: '1.0',
        timeoutMilliseconds: 10000,
      },
      parent,
    );
    const routes = apiRoutes.map(
      (route) =>
        new aws.apigatewayv2.Route(
          `${name}-${route.routeKey
            .replace(/[^A-Za-z0-9]+/g, '-')
            .replace(/-$/, '')
            .toLowerCase()}`,
          {
            apiId: api.id,
            routeKey: route.routeKey,
            target: pulumi.interpolate`integrations/${integration.id}`,
            authorizationType: 'JWT',
            authorizerId: authorizer.id,
            authorizationScopes: route.scopes,
          },
          parent,
        ),
    );

    const logKey = new aws.kms.Key(
      `${name}-logs`,
      {
        description: `${args.prefix}: API access logs`,
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
            Sid: 'LogsEncryptThisStacksLogGroups',
            Effect: 'Allow',
            Principal: { Service: `logs.${args.region}.amazonaws.com` },
            Action: [
              'kms:Encrypt',
              'kms:Decrypt',
              'kms:ReEncrypt*',
              'kms:GenerateDataKey*',
              'kms:DescribeKey',
            ],
            Resource: '*',
            Condition: {
              ArnLike: {
                'kms:EncryptionContext:aws:logs:arn': pulumi.interpolate`arn:aws:logs:${args.region}:${args.accountId}:log-group:/aws/apigateway/${args.prefix}*`,
              },
            },
          },
        ]),
      },
      parent,
    );
    const accessLogs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      {
        name: `/aws/apigateway/${args.prefix}`,
        retentionInDays: args.accessLogRetentionDays,
        kmsKeyId: logKey.arn,
      },
      parent,
    );

    const stage = new aws.apigatewayv2.Stage(
      `${name}-default`,
      {
        apiId: api.id,
        name: '$default',
        autoDeploy: true,
        defaultRouteSettings: {
          throttlingBurstLimit: args.throttlingBurstLimit,
          throttlingRateLimit: args.throttlingRateLimit,
          // Per-route metrics: the latency alarms tell POST from GET.
          detailedMetricsEnabled: true,
        },
        accessLogSettings: { destinationArn: accessLogs.arn, format: accessLogFormat },
      },
      { parent: this, dependsOn: routes },
    );

    this.apiId = api.id;
    this.apiEndpoint = api.apiEndpoint;
    this.stageName = '$default';
    this.targetGroupArn = targetGroup.arn;
    this.loadBalancerArnSuffix = loadBalancer.arnSuffix;
    this.targetGroupArnSuffix = targetGroup.arnSuffix;
    this.accessLogGroupName = accessLogs.name;
    this.registerOutputs({
      apiEndpoint: this.apiEndpoint,
      targetGroupArn: this.targetGroupArn,
      stage: stage.name,
    });
  }
}
