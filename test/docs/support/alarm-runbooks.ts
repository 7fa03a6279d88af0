import { pathToFileURL } from 'node:url';
import { repoRoot } from './markdown.ts';

/**
 * Prints, as JSON, what the infra stack (run under Pulumi's mocks by infra's own test harness) says
 * about its CloudWatch alarms: the names it exports in `alarmNames`, and the runbook each alarm's
 * description names. One stack per process: Pulumi's runtime state is per process.
 *
 * Usage: node test/docs/support/alarm-runbooks.ts dev|prod
 */
interface Recorded {
  type: string;
  inputs: Record<string, unknown>;
}

const stack = process.argv[2];
if (stack !== 'dev' && stack !== 'prod') throw new Error('usage: alarm-runbooks.ts dev|prod');
// A computed specifier: the root type-check does not follow it into infra/ (whose dependencies
// are installed separately, by `npm ci --prefix infra`).
const harnessUrl = pathToFileURL(`${repoRoot}/infra/test/harness.ts`).href;
const harness = (await import(harnessUrl)) as {
  runProgram(stack: string): Promise<{ resources: Recorded[]; outputs: Record<string, unknown> }>;
};
const run = await harness.runProgram(stack);
const alarmTypes = ['aws:cloudwatch/metricAlarm:MetricAlarm', 'aws:cloudwatch/compositeAlarm:CompositeAlarm'];
const described = run.resources
  .filter((resource) => alarmTypes.includes(resource.type))
  .map((resource) => ({
    name: String(resource.inputs.name ?? resource.inputs.alarmName),
    runbook: /Runbook: (\S+)$/.exec(String(resource.inputs.alarmDescription ?? ''))?.[1] ?? null,
  }));
process.stdout.write(`${JSON.stringify({ alarmNames: run.outputs.alarmNames, described })}\n`);
