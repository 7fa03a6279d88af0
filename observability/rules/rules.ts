import { Document } from 'yaml';
import { operationalRuleGroup } from './alerts.ts';
import { durabilityRuleGroup } from './durability-rules.ts';
import { guardRuleGroup } from './guard-alerts.ts';
import { replayRuleGroup } from './replay-alerts.ts';
import { sloRuleGroups } from './slo-rules.ts';
import type { RulesFile } from './types.ts';

/** Where the generated rules file lives: the chart wraps it into its PrometheusRule. */
export const rulesFilePath = 'charts/ingesta/files/prometheus-rules.yaml';

/** Every rule group of ingesta: SLI recording rules, burn-rate alerts, operational alerts. */
export function rulesFile(): RulesFile {
  return {
    groups: [
      ...sloRuleGroups(),
      durabilityRuleGroup(),
      operationalRuleGroup(),
      guardRuleGroup(),
      replayRuleGroup(),
    ],
  };
}

/** The rules file as YAML, exactly as committed. */
export function renderRulesYaml(): string {
  const document = new Document(rulesFile());
  document.commentBefore = [
    ' Prometheus rules of ingesta (promtool reads this file; the chart wraps it as a PrometheusRule spec).',
    ' Generated from observability/rules by `node observability/rules/generate.ts`: edit those, not this file.',
    ' Every alert links its runbook in docs/runbooks; docs/slo.md explains the objectives and windows.',
  ].join('\n');
  return document.toString({ lineWidth: 0 });
}
