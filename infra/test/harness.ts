import { readFileSync } from 'node:fs';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

/** Values as the mocks record them: JSON-like data whose shape each assertion states. */
// biome-ignore lint/suspicious/noExplicitAny: recorded inputs are untyped wire data, checked by the asserts.
export type Json = any;

/** What the program asked Pulumi to create: one entry per resource, with the inputs it passed. */
export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, Json>;
}

export interface ProgramRun {
  resources: RecordedResource[];
  outputs: Record<string, Json>;
  calls: string[];
}

export const accountId = '123456789012';
export const region = 'us-east-1';
/** The password the mocked RDS-managed secret holds: characters a URL must escape. */
export const masterPassword = 'p@ss:w/rd%?';

function nameOf(args: pulumi.runtime.MockResourceArgs): string {
  return args.inputs.name ?? args.inputs.identifier ?? args.name;
}

/** Cloud-side attributes the program reads back from resources (ARNs, URLs, endpoints...). */
function computedState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const name = nameOf(args);
  const arnOf = (service: string, resource: string) =>
    `arn:aws:${service}:${region}:${accountId}:${resource}`;
  switch (args.type) {
    case 'aws:sns/topic:Topic':
      return { arn: arnOf('sns', name), name };
    case 'aws:sqs/queue:Queue':
      return {
        arn: arnOf('sqs', name),
        name,
        url: `https://sqs.${region}.amazonaws.com/${accountId}/${name}`,
      };
    case 'aws:kms/key:Key':
      return { arn: arnOf('kms', `key/${args.name}`), keyId: args.name };
    case 'aws:iam/role:Role':
      return { arn: `arn:aws:iam::${accountId}:role/${name}`, name };
    case 'aws:iam/openIdConnectProvider:OpenIdConnectProvider':
      return { arn: `arn:aws:iam::${accountId}:oidc-provider/token.actions.githubusercontent.com` };
    case 'aws:ec2/vpc:Vpc':
      return { cidrBlock: args.inputs.cidrBlock };
    case 'aws:ec2/launchTemplate:LaunchTemplate':
      return { latestVersion: 1 };
    case 'aws:ecr/repository:Repository':
      return {
        arn: arnOf('ecr', `repository/${name}`),
        repositoryUrl: `${accountId}.dkr.ecr.${region}.amazonaws.com/${name}`,
      };
    case 'aws:rds/instance:Instance':
      return {
        arn: arnOf('rds', `db:${name}`),
        address: `${name}.abcdefghijkl.${region}.rds.amazonaws.com`,
        port: 5432,
        masterUserSecrets: [
          {
            secretArn: arnOf('secretsmanager', `secret:rds!db-${name}-AbCdEf`),
            kmsKeyId: args.inputs.masterUserSecretKmsKeyId,
          },
        ],
      };
    case 'aws:secretsmanager/secret:Secret':
      return { arn: arnOf('secretsmanager', `secret:${name}-AbCdEf`), name };
    case 'aws:lb/loadBalancer:LoadBalancer':
      return {
        arn: arnOf('elasticloadbalancing', `loadbalancer/net/${name}/0123456789abcdef`),
        arnSuffix: `net/${name}/0123456789abcdef`,
      };
    case 'aws:lb/targetGroup:TargetGroup':
      return {
        arn: arnOf('elasticloadbalancing', `targetgroup/${name}/0123456789abcdef`),
        arnSuffix: `targetgroup/${name}/0123456789abcdef`,
      };
    case 'aws:lb/listener:Listener':
      return { arn: arnOf('elasticloadbalancing', `listener/net/ingesta/0123456789abcdef/fedcba9876543210`) };
    case 'aws:cloudwatch/logGroup:LogGroup':
      return { arn: arnOf('logs', `log-group:${name}`), name };
    case 'aws:apigatewayv2/api:Api':
      return { apiEndpoint: `https://a1b2c3d4e5.execute-api.${region}.amazonaws.com` };
    case 'aws:cloudwatch/metricAlarm:MetricAlarm':
      return { arn: arnOf('cloudwatch', `alarm:${name}`), name };
    case 'aws:cloudwatch/compositeAlarm:CompositeAlarm':
      return { arn: arnOf('cloudwatch', `alarm:${args.inputs.alarmName}`) };
    case 'eks:index:Cluster': {
      // A multi-language component: the mock stands in for its provider, returning what it outputs.
      const issuer = `oidc.eks.${region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE`;
      return {
        kubeconfigJson: JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [] }),
        oidcProviderArn: `arn:aws:iam::${accountId}:oidc-provider/${issuer}`,
        oidcProviderUrl: `https://${issuer}`,
        oidcIssuer: issuer,
        nodeSecurityGroupId: 'sg-0eksclustersg',
        clusterSecurityGroupId: 'sg-0eksclustersg',
      };
    }
    default:
      return { arn: arnOf(args.type.split(':')[1]?.split('/')[0] ?? 'unknown', `${args.type}/${name}`) };
  }
}

function stackConfig(stack: string): Record<string, string> {
  const file = parse(readFileSync(new URL(`../Pulumi.${stack}.yaml`, import.meta.url), 'utf8')) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(file.config).map(([key, value]) => [
      key,
      typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
}

async function resolve(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) return resolve(await new Promise((done) => value.apply(done)));
  if (Array.isArray(value)) return Promise.all(value.map(resolve));
  return value;
}

/**
 * Runs index.ts against Pulumi's mocks with the stack's own config file (Pulumi.<stack>.yaml) and
 * returns every resource registered, every invoke made, and the resolved stack outputs. Pulumi's
 * runtime state is per process: run one stack per test file.
 */
export async function runProgram(stack: 'dev' | 'prod'): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const calls: string[] = [];
  pulumi.runtime.setAllConfig(stackConfig(stack));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computedState(args) } };
      },
      call(args) {
        calls.push(args.token);
        switch (args.token) {
          case 'aws:index/getCallerIdentity:getCallerIdentity':
            return {
              accountId,
              arn: `arn:aws:iam::${accountId}:user/ci`,
              userId: 'AIDAEXAMPLE',
              id: accountId,
            };
          case 'aws:secretsmanager/getSecretVersion:getSecretVersion':
            return {
              arn: args.inputs.secretId,
              secretString: JSON.stringify({ username: 'ingesta', password: masterPassword }),
            };
          default:
            throw new Error(`unmocked invoke ${args.token}`);
        }
      },
    },
    'ingesta',
    stack,
    false,
  );
  const program: Record<string, unknown> = await import('../index.ts');
  const outputs: Record<string, Json> = {};
  for (const [key, value] of Object.entries(program)) outputs[key] = await resolve(value);
  // Resources no output depends on (policies, subscriptions...) register after the outputs resolve.
  await pulumi.runtime.disconnect();
  return { resources, outputs, calls };
}

/** Helpers to find resources and read their policy documents. */
export class Resources {
  readonly all: RecordedResource[];

  constructor(all: RecordedResource[]) {
    this.all = all;
  }

  ofType(type: string): RecordedResource[] {
    return this.all.filter((resource) => resource.type === type);
  }

  one(type: string, name: string): RecordedResource {
    const found = this.all.filter((resource) => resource.type === type && resource.name === name);
    if (found.length !== 1) {
      const names = this.ofType(type).map((resource) => resource.name);
      throw new Error(
        `expected one ${type} named ${name}, found ${found.length} (have: ${names.join(', ')})`,
      );
    }
    return found[0]!;
  }
}

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** Parses an IAM policy document as AWS receives it. */
export function statementsOf(policy: string): Statement[] {
  const document = JSON.parse(policy) as { Version: string; Statement: Statement[] };
  if (document.Version !== '2012-10-17') throw new Error(`policy version ${document.Version}`);
  return document.Statement;
}

export function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Every (action, resource) pair a policy allows, sorted: the whole grant in one comparable list. */
export function grants(policy: string): string[] {
  return statementsOf(policy)
    .filter((statement) => statement.Effect === 'Allow')
    .flatMap((statement) =>
      asList(statement.Action).flatMap((action) =>
        asList(statement.Resource).map((resource) => `${action} ${resource}`),
      ),
    )
    .sort();
}
