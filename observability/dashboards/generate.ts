/**
 * Writes the Grafana dashboards to charts/ingesta/files/dashboards/: `npm run dashboards`
 * (`node observability/dashboards/generate.ts`). Commit the result; a test checks it is up to date.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dashboardFileName, dashboards, dashboardsDir, renderDashboard } from './dashboards.ts';

export type { PanelQuery } from './dashboards.ts';
export { dashboards, expandVariables, panelQueries, renderDashboard } from './dashboards.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

if (import.meta.main) {
  mkdirSync(join(repoRoot, dashboardsDir), { recursive: true });
  for (const dashboard of dashboards()) {
    const path = join(dashboardsDir, dashboardFileName(dashboard));
    writeFileSync(join(repoRoot, path), renderDashboard(dashboard));
    console.warn(`wrote ${path}`);
  }
}
