import { createHmac } from 'node:crypto';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { DatabaseConfig } from '../config.ts';
import { rdsCaBundlePath, verifyingSslModes } from '../database-tls.ts';
import { policyDocument } from '../policy.ts';

export interface DatabaseArgs extends DatabaseConfig {
  prefix: string;
  stack: string;
  production: boolean;
  accountId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** Security group of the EKS nodes and pods: the only source allowed to connect. */
  clientSecurityGroupId: pulumi.Input<string>;
}

/** Memory of the instance classes the stacks may use, in GiB (max_connections derives from it). */
const instanceMemoryGib: Record<string, number> = {
  'db.t4g.micro': 1,
  'db.t4g.small': 2,
  'db.t4g.medium': 4,
  'db.t4g.large': 8,
  'db.m7g.large': 8,
  'db.m7g.xlarge': 16,
  'db.m7g.2xlarge': 32,
  'db.r7g.large': 16,
  'db.r7g.xlarge': 32,
};

/**
 * RDS PostgreSQL's default max_connections: LEAST(DBInstanceClassMemory / 9531392, 5000), where
 * DBInstanceClassMemory is the class memory less what RDS reserves (about 10 %).
 */
export function defaultMaxConnections(instanceClass: string): number {
  const gib = instanceMemoryGib[instanceClass];
  if (gib === undefined)
    throw new Error(`database.instanceClass ${instanceClass}: add its memory to instanceMemoryGib`);
  return Math.min(Math.floor((gib * 1024 ** 3 * 0.9) / 9531392), 5000);
}

/** Builds the DATABASE_URL the pods receive from the master credentials RDS keeps in Secrets Manager. */
export function databaseUrl(args: {
  username: string;
  password: string;
  host: string;
  port: number;
  database: string;
  sslMode: string;
}): string {
  const credentials = `${encodeURIComponent(args.username)}:${encodeURIComponent(args.password)}`;
  // node-postgres reads sslrootcert as libpq does: the CA bundle the image ships.
  const rootCert = verifyingSslModes.includes(args.sslMode) ? `&sslrootcert=${rdsCaBundlePath}` : '';
  return `postgres://${credentials}@${args.host}:${args.port}/${encodeURIComponent(args.database)}?sslmode=${args.sslMode}${rootCert}`;
}

/** Login of the API and consumer once database.appRole is on: DML on ingesta's tables only. */
export const appUsername = 'ingesta_app_login';

/** A password derived from the master password for one role: HMAC-SHA256, URL-safe base64. */
export function derivedPassword(masterPassword: string, role: string): string {
  return createHmac('sha256', masterPassword).update(`ingesta:${role}`).digest('base64url');
}

/**
 * RDS PostgreSQL in the isolated database subnets: never public, storage, backups, Performance
 * Insights and secrets encrypted with the stack's database key, TLS enforced (rds.force_ssl), the
 * master password generated and kept by RDS in Secrets Manager. Multi-AZ, deletion protection and
 * Performance Insights follow the stack (on in prod).
 *
 * DATABASE_URL: the RDS-managed secret holds {username, password} only, so a second secret
 * (`ingesta/<stack>/database`, property `url`) holds the URL the chart's ExternalSecret reads. Its
 * password is read from the managed secret at `pulumi up`; the managed secret's automatic rotation
 * is therefore off (a rotation would leave the URL stale), see docs/infrastructure.md.
 */
export class Database extends pulumi.ComponentResource {
  readonly address: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly identifier: pulumi.Output<string>;
  readonly masterSecretArn: pulumi.Output<string>;
  readonly urlSecretArn: pulumi.Output<string>;
  readonly urlSecretName: pulumi.Output<string>;
  /** JSON property of the URL secret holding the URL (chart: database.externalSecret.remoteProperty). */
  readonly urlSecretProperty = 'url';
  /** Property of the least-privilege app login's URL (database.appRole in the chart). */
  readonly appUrlSecretProperty = 'appUrl';
  readonly keyArn: pulumi.Output<string>;
  readonly allocatedStorageGb: number;
  readonly maxConnections: number;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ingesta:database:Database', name, {}, opts);
    const parent = { parent: this };
    this.allocatedStorageGb = args.allocatedStorageGb;
    this.maxConnections = defaultMaxConnections(args.instanceClass);

    const key = new aws.kms.Key(
      `${name}-data`,
      {
        description: `${args.prefix}: database storage, snapshots, Performance Insights and secrets`,
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
    new aws.kms.Alias(`${name}-data`, { name: `alias/${args.prefix}-data`, targetKeyId: key.keyId }, parent);

    const subnetGroup = new aws.rds.SubnetGroup(
      `${name}-subnets`,
      {
        name: args.prefix,
        subnetIds: args.subnetIds,
        description: `${args.prefix} isolated database subnets`,
      },
      parent,
    );

    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-postgres`,
      {
        name: `${args.prefix}-postgres`,
        vpcId: args.vpcId,
        description: 'PostgreSQL: reachable from the EKS nodes and pods only',
        ingress: [
          {
            protocol: 'tcp',
            fromPort: 5432,
            toPort: 5432,
            securityGroups: [args.clientSecurityGroupId],
            description: 'PostgreSQL from the EKS cluster security group',
          },
        ],
        // The database opens no connections of its own.
        egress: [],
      },
      parent,
    );

    const major = args.engineVersion;
    const parameterGroup = new aws.rds.ParameterGroup(
      `${name}-postgres`,
      {
        name: `${args.prefix}-postgres${major}`,
        family: `postgres${major}`,
        description: `${args.prefix}: TLS only, slow statements logged`,
        parameters: [
          { name: 'rds.force_ssl', value: '1' },
          { name: 'log_min_duration_statement', value: '1000' },
        ],
      },
      parent,
    );

    const instance = new aws.rds.Instance(
      `${name}-postgres`,
      {
        identifier: args.prefix,
        engine: 'postgres',
        engineVersion: major,
        autoMinorVersionUpgrade: true,
        instanceClass: args.instanceClass,
        allocatedStorage: args.allocatedStorageGb,
        maxAllocatedStorage: args.maxAllocatedStorageGb,
        storageType: 'gp3',
        storageEncrypted: true,
        kmsKeyId: key.arn,
        dbName: args.databaseName,
        username: args.masterUsername,
        manageMasterUserPassword: true,
        masterUserSecretKmsKeyId: key.arn,
        multiAz: args.multiAz,
        publiclyAccessible: false,
        dbSubnetGroupName: subnetGroup.name,
        vpcSecurityGroupIds: [securityGroup.id],
        parameterGroupName: parameterGroup.name,
        caCertIdentifier: 'rds-ca-rsa2048-g1',
        backupRetentionPeriod: args.backupRetentionDays,
        backupWindow: '03:00-04:00',
        maintenanceWindow: 'sun:04:30-sun:05:30',
        copyTagsToSnapshot: true,
        deletionProtection: args.deletionProtection,
        skipFinalSnapshot: !args.production,
        finalSnapshotIdentifier: args.production ? `${args.prefix}-final` : undefined,
        performanceInsightsEnabled: args.performanceInsights,
        performanceInsightsKmsKeyId: args.performanceInsights ? key.arn : undefined,
        performanceInsightsRetentionPeriod: args.performanceInsights ? 7 : undefined,
        enabledCloudwatchLogsExports: ['postgresql', 'upgrade'],
        applyImmediately: !args.production,
      },
      parent,
    );

    const masterSecretArn = instance.masterUserSecrets.apply((secrets) => {
      const arn = secrets[0]?.secretArn;
      if (!arn) throw new Error('RDS returned no master user secret');
      return arn;
    });
    // The URL secret copies the master password: managed rotation would silently invalidate it.
    new aws.secretsmanager.SecretRotation(
      `${name}-master-rotation`,
      { secretId: masterSecretArn, rotationEnabled: false },
      parent,
    );

    const urlSecret = new aws.secretsmanager.Secret(
      `${name}-url`,
      {
        name: `ingesta/${args.stack}/database`,
        description: `${args.prefix}: DATABASE_URL of the ingesta pods (property "url")`,
        kmsKeyId: key.arn,
        recoveryWindowInDays: args.production ? 30 : 7,
      },
      parent,
    );
    const master = aws.secretsmanager.getSecretVersionOutput({ secretId: masterSecretArn }, parent);
    const secretString = pulumi
      .all([master.secretString, instance.address, instance.port])
      .apply(([json, host, port]) => {
        const credentials = JSON.parse(json) as { username: string; password: string };
        const url = databaseUrl({
          username: credentials.username,
          password: credentials.password,
          host,
          port,
          database: args.databaseName,
          sslMode: args.sslMode,
        });
        // The least-privilege login the chart's database-roles hook creates (database.appRole): its
        // password is derived from the master password, so it is stable across `pulumi up` and
        // changes only with it, without a random-value provider.
        const appUrl = databaseUrl({
          username: appUsername,
          password: derivedPassword(credentials.password, appUsername),
          host,
          port,
          database: args.databaseName,
          sslMode: args.sslMode,
        });
        return JSON.stringify({
          url,
          appUrl,
          host,
          port,
          dbname: args.databaseName,
          username: credentials.username,
        });
      });
    new aws.secretsmanager.SecretVersion(
      `${name}-url`,
      { secretId: urlSecret.id, secretString: pulumi.secret(secretString) },
      parent,
    );

    this.address = instance.address;
    this.port = instance.port;
    this.identifier = instance.identifier;
    this.masterSecretArn = masterSecretArn;
    this.urlSecretArn = urlSecret.arn;
    this.urlSecretName = urlSecret.name;
    this.keyArn = key.arn;
    this.registerOutputs({ address: this.address, urlSecretArn: this.urlSecretArn });
  }
}
