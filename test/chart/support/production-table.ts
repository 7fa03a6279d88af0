/**
 * The "What runs in production" table of docs/operations.md, generated from the objects the deploy
 * workflow's command line renders for production (support/release.ts), so the page cannot drift
 * from what CI deploys. `node test/chart/support/production-table.ts --write` rewrites it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest } from './chart.ts';
import { repoRoot } from './chart.ts';
import { renderRelease } from './release.ts';

export const operationsPath = join(repoRoot, 'docs', 'operations.md');
const startMarker = '<!-- production:start -->';
const endMarker = '<!-- production:end -->';

// biome-ignore lint/suspicious/noExplicitAny: a Kubernetes container spec
function resources(container: any): string {
  const { requests = {}, limits = {} } = container.resources ?? {};
  return `${requests.cpu ?? '–'} / ${requests.memory ?? '–'} → ${limits.cpu ?? '–'} / ${limits.memory ?? '–'}`;
}

function scaling(manifests: Manifest[], name: string, fixed: number | undefined): string {
  const hpa = manifests.find(
    (manifest) => manifest.kind === 'HorizontalPodAutoscaler' && manifest.spec.scaleTargetRef.name === name,
  );
  if (hpa) {
    const cpu = hpa.spec.metrics?.[0]?.resource?.target?.averageUtilization;
    return `HPA ${hpa.spec.minReplicas}–${hpa.spec.maxReplicas} pods at ${cpu} % CPU`;
  }
  const scaled = manifests.find(
    (manifest) => manifest.kind === 'ScaledObject' && manifest.spec.scaleTargetRef.name === name,
  );
  if (scaled) {
    const trigger = scaled.spec.triggers[0];
    return `KEDA ${scaled.spec.minReplicaCount}–${scaled.spec.maxReplicaCount} pods, ${trigger.metadata.queueLength} SQS messages per pod`;
  }
  return `${fixed ?? 1} pods (fixed)`;
}

/** One row per thing that runs or decides how it runs, in a stable order. */
export function productionRows(manifests: Manifest[]): string[][] {
  const rows: string[][] = [];
  const of = (kind: string) => manifests.filter((manifest) => manifest.kind === kind);
  for (const deployment of of('Deployment')) {
    const spec = deployment.spec.template.spec;
    const container = spec.containers[0];
    const config = manifests.find(
      (manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name === deployment.metadata.name,
    );
    const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const drain = Number(config?.data?.SHUTDOWN_TIMEOUT_MS ?? 0) / 1000;
    rows.push([
      `Deployment \`${deployment.metadata.name}\``,
      scaling(manifests, deployment.metadata.name, deployment.spec.replicas),
      resources(container),
      `preStop ${preStop} s, drain ${drain} s, grace ${spec.terminationGracePeriodSeconds} s`,
    ]);
  }
  for (const cronJob of of('CronJob')) {
    const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0];
    rows.push([
      `CronJob \`${cronJob.metadata.name}\``,
      `\`${cronJob.spec.schedule}\` (UTC)`,
      resources(container),
      container.command.slice(1).join(' '),
    ]);
  }
  for (const job of of('Job')) {
    const container = job.spec.template.spec.containers[0];
    rows.push([
      `Job \`${job.metadata.name}\``,
      `hook: ${job.metadata.annotations['helm.sh/hook']}`,
      resources(container),
      container.command.slice(1, 3).join(' '),
    ]);
  }
  for (const budget of of('PodDisruptionBudget')) {
    rows.push([
      `PodDisruptionBudget \`${budget.metadata.name}\``,
      `maxUnavailable ${budget.spec.maxUnavailable}`,
      '',
      '',
    ]);
  }
  for (const binding of of('TargetGroupBinding')) {
    rows.push([
      `TargetGroupBinding \`${binding.metadata.name}\``,
      `NLB target group, ${binding.spec.targetType} targets`,
      '',
      `Service port ${binding.spec.serviceRef.port}`,
    ]);
  }
  const policies = of('NetworkPolicy');
  const ports = [
    ...new Set(
      policies.flatMap((policy) =>
        [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])].flatMap((rule) =>
          (rule.ports ?? []).map(
            (port: { protocol: string; port: number }) => `${port.port}/${port.protocol}`,
          ),
        ),
      ),
    ),
  ].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  rows.push([
    `NetworkPolicy × ${policies.length}`,
    'default deny, then one allow policy per component',
    '',
    `ports ${ports.join(', ')}`,
  ]);
  for (const monitor of of('ServiceMonitor')) {
    rows.push([
      `ServiceMonitor \`${monitor.metadata.name}\``,
      `every ${monitor.spec.endpoints[0].interval}`,
      '',
      `port ${monitor.spec.endpoints[0].port} ${monitor.spec.endpoints[0].path}`,
    ]);
  }
  for (const rule of of('PrometheusRule')) {
    const count = rule.spec.groups.flatMap((group: { rules: unknown[] }) => group.rules).length;
    rows.push([
      `PrometheusRule \`${rule.metadata.name}\``,
      `${rule.spec.groups.length} groups, ${count} rules`,
      '',
      '',
    ]);
  }
  const dashboards = of('ConfigMap').filter((map) => map.metadata.name.includes('-dashboard-'));
  rows.push([
    `Grafana dashboards × ${dashboards.length}`,
    `folder ${dashboards[0]?.metadata.annotations?.grafana_folder ?? '(General)'}`,
    '',
    dashboards.map((map) => `\`${Object.keys(map.data)[0]}\``).join(', '),
  ]);
  for (const secret of of('ExternalSecret')) {
    const ref = secret.spec.data[0].remoteRef;
    rows.push([
      `ExternalSecret \`${secret.metadata.name}\``,
      `Secrets Manager \`${ref.key}\` (${ref.property ?? 'whole string'})`,
      '',
      `refresh ${secret.spec.refreshInterval}`,
    ]);
  }
  return rows;
}

export function productionTable(manifests = renderRelease('production')): string {
  const header = ['Object', 'Scale or schedule', 'Requests → limits (CPU / memory)', 'Notes'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...productionRows(manifests).map(line)].join('\n');
}

/** The table as docs/operations.md has it now. */
export function documentedTable(text = readFileSync(operationsPath, 'utf8')): string | undefined {
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  if (start < 0 || end < start) return undefined;
  return text.slice(start + startMarker.length, end).trim();
}

export function writeProductionTable(): void {
  const text = readFileSync(operationsPath, 'utf8');
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  if (start < 0 || end < start) throw new Error(`docs/operations.md has no ${startMarker} … ${endMarker}`);
  writeFileSync(
    operationsPath,
    `${text.slice(0, start + startMarker.length)}\n${productionTable()}\n${text.slice(end)}`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) writeProductionTable();
  else process.stdout.write(`${productionTable()}\n`);
}
