// Turns `pulumi stack output --json` into the Helm values of charts/ingesta that come from the stack.
//
//   pulumi stack output --json | node scripts/outputs-to-values.ts > values.generated.yaml
//   node scripts/outputs-to-values.ts outputs.json --image-tag 1.4.2 --external-secret
//
// Options: --image-tag TAG, --image-digest sha256:..., --external-secret (also render
// database.externalSecret: the chart then creates the DATABASE_URL Secret from Secrets Manager).
// Exits 1 with the list of what is missing when an output the chart needs is absent or empty.
// Node built-ins only: it runs wherever Node 24 does, without infra/node_modules.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

type Values = { [key: string]: string | number | boolean | string[] | Values };

export interface ConvertOptions {
  imageTag?: string;
  imageDigest?: string;
  externalSecret?: boolean;
}

export class MissingOutputsError extends Error {
  readonly missing: string[];

  constructor(missing: string[]) {
    super(
      `stack outputs lack ${missing.join(', ')}: run \`pulumi up\` for the stack, then pass ` +
        '`pulumi stack output --json` (secret outputs print as "[secret]" and cannot be used)',
    );
    this.name = 'MissingOutputsError';
    this.missing = missing;
  }
}

/** Builds the chart values from the stack outputs; throws MissingOutputsError naming every absent output. */
export function outputsToValues(outputs: Record<string, unknown>, options: ConvertOptions = {}): Values {
  const missing: string[] = [];
  const take = (name: string): string => {
    const value = outputs[name];
    if (typeof value !== 'string' || value === '' || value === '[secret]') {
      missing.push(name);
      return '';
    }
    return value;
  };
  const takeSeconds = (name: string): number => {
    const value = outputs[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      missing.push(name);
      return 0;
    }
    return value;
  };

  const values: Values = {
    image: {
      repository: take('ecrRepositoryUrl'),
      tag: options.imageTag ?? '',
      digest: options.imageDigest ?? '',
    },
    aws: {
      region: take('awsRegion'),
      topicArn: take('topicArn'),
      queueUrl: take('queueUrl'),
      dlqUrl: take('dlqUrl'),
    },
    database: {
      existingSecret: { name: take('databaseSecretName'), key: take('databaseSecretKey') },
    },
    auth: { issuer: take('authIssuer'), audience: take('authAudience'), jwksUrl: take('authJwksUrl') },
    api: {
      serviceAccount: { roleArn: take('apiRoleArn') },
      targetGroupBinding: {
        targetGroupArn: take('targetGroupArn'),
        deregistrationDelaySeconds: takeSeconds('targetGroupDeregistrationDelaySec'),
      },
    },
    consumer: { serviceAccount: { roleArn: take('consumerRoleArn') } },
    // Optional: stacks made before replays have no such output, and allow none.
    replay: { targets: Array.isArray(outputs.replayTargets) ? (outputs.replayTargets as string[]) : [] },
    networkPolicy: { loadBalancerCidrs: [take('vpcCidr')] },
  };
  if (options.externalSecret) {
    (values.database as Values).externalSecret = {
      enabled: true,
      secretStoreRef: { kind: 'ClusterSecretStore', name: take('databaseSecretStore') },
      remoteKey: take('databaseUrlSecretName'),
      remoteProperty: take('databaseUrlSecretProperty'),
    };
  }
  if (missing.length > 0) throw new MissingOutputsError(missing);
  return values;
}

/** YAML for nested maps of strings, numbers, booleans and string lists; strings are double-quoted (JSON escapes are YAML's). */
export function toYaml(values: Values, indent = ''): string {
  return Object.entries(values)
    .map(([key, value]) => {
      if (typeof value === 'string') return `${indent}${key}: ${JSON.stringify(value)}\n`;
      if (typeof value === 'boolean' || typeof value === 'number') return `${indent}${key}: ${value}\n`;
      if (Array.isArray(value)) {
        return `${indent}${key}:\n${value.map((item) => `${indent}  - ${JSON.stringify(item)}\n`).join('')}`;
      }
      return `${indent}${key}:\n${toYaml(value, `${indent}  `)}`;
    })
    .join('');
}

function parseArgs(argv: string[]): { file?: string; options: ConvertOptions } {
  const options: ConvertOptions = {};
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = () => {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      return value;
    };
    if (arg === '--image-tag') options.imageTag = next();
    else if (arg === '--image-digest') options.imageDigest = next();
    else if (arg === '--external-secret') options.externalSecret = true;
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else if (file === undefined) file = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  return { file, options };
}

function main(): void {
  try {
    const { file, options } = parseArgs(process.argv.slice(2));
    const text = readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8');
    let outputs: unknown;
    try {
      outputs = JSON.parse(text);
    } catch {
      throw new Error('input is not JSON: pass the output of `pulumi stack output --json`');
    }
    if (outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) {
      throw new Error('input is not a JSON object of stack outputs');
    }
    const header =
      '# Generated by infra/scripts/outputs-to-values.ts from the Pulumi stack outputs. Do not edit.\n';
    process.stdout.write(header + toYaml(outputsToValues(outputs as Record<string, unknown>, options)));
  } catch (error) {
    console.error(`outputs-to-values: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
