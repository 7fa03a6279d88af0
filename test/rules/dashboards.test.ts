/**
 * The Grafana dashboards: the committed JSON is the generator's output, both dashboards share the
 * datasource and namespace variables, and every query is scoped to the namespace and reads series that
 * ingesta exports or the rules file records.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import {
  dashboardFileName,
  dashboards,
  dashboardsDir,
  expandVariables,
  panelQueries,
  renderDashboard,
} from '../../observability/dashboards/dashboards.ts';
import { type Dashboard, datasource, type Panel } from '../../observability/dashboards/grafana.ts';
import { rulesFilePath } from '../../observability/rules/rules.ts';
import type { RulesFile } from '../../observability/rules/types.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const generated = dashboards();

function contentPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.filter((panel) => panel.type !== 'row');
}

describe('grafana dashboards', () => {
  test('when the dashboards are generated again, then they equal the committed JSON files', () => {
    const committedFiles = readdirSync(join(repoRoot, dashboardsDir)).sort();
    assert.deepEqual(
      committedFiles,
      generated.map(dashboardFileName).sort(),
      `${dashboardsDir} does not match the generator: run \`npm run dashboards\` and commit the result`,
    );
    for (const dashboard of generated) {
      const file = join(dashboardsDir, dashboardFileName(dashboard));
      assert.equal(
        readFileSync(join(repoRoot, file), 'utf8'),
        renderDashboard(dashboard),
        `${file} is stale: run \`npm run dashboards\` and commit the result`,
      );
    }
  });

  test('when the dashboards are listed, then they are the overview and the SLO dashboard with fixed uids', () => {
    assert.deepEqual(
      generated.map((dashboard) => dashboard.uid),
      ['ingesta-overview', 'ingesta-slo'],
    );
  });

  for (const dashboard of generated) {
    test(`when ${dashboard.uid} loads, then it offers a prometheus datasource and a namespace variable`, () => {
      const variables = (dashboard.templating as { list: Record<string, unknown>[] }).list;
      const picker = variables.find((variable) => variable.name === 'datasource');
      assert.deepEqual(
        { type: picker?.type, query: picker?.query },
        { type: 'datasource', query: 'prometheus' },
      );
      const namespace = variables.find((variable) => variable.name === 'namespace');
      assert.equal(namespace?.type, 'query');
      assert.deepEqual(namespace?.datasource, datasource);
    });

    test(`when ${dashboard.uid} is laid out, then panel ids are unique and panels fit the grid without overlap`, () => {
      const ids = dashboard.panels.map((panel) => panel.id);
      assert.equal(new Set(ids).size, ids.length);
      const cells = new Set<string>();
      for (const panel of dashboard.panels) {
        const { x, y, w, h } = panel.gridPos;
        assert.ok(x >= 0 && x + w <= 24, `${panel.title} leaves the 24-column grid`);
        for (let row = y; row < y + h; row += 1) {
          for (let column = x; column < x + w; column += 1) {
            const cell = `${row}:${column}`;
            assert.ok(!cells.has(cell), `${panel.title} overlaps another panel at ${cell}`);
            cells.add(cell);
          }
        }
      }
    });

    test(`when ${dashboard.uid} queries, then every panel uses the datasource variable and has a description`, () => {
      for (const panel of contentPanels(dashboard)) {
        assert.deepEqual(panel.datasource, datasource, panel.title);
        assert.ok(panel.description, `${panel.title} has no description`);
        assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`);
        for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, panel.datasource);
      }
    });
  }

  test('when a panel query selects series, then every selector is scoped to the chosen namespace', () => {
    for (const { dashboard, panel, expr } of panelQueries()) {
      const selectors = expr.match(/\{[^}]*\}/g) ?? [];
      assert.ok(selectors.length > 0, `${dashboard} / ${panel}: no series selector`);
      for (const selector of selectors) {
        assert.ok(
          selector.includes('namespace="$namespace"'),
          `${dashboard} / ${panel}: ${selector} is not scoped`,
        );
      }
    }
  });

  test('when panel titles are listed, then they are unique per dashboard', () => {
    for (const dashboard of generated) {
      const titles = contentPanels(dashboard).map((panel) => panel.title);
      assert.deepEqual(
        titles.filter((title, index) => titles.indexOf(title) !== index),
        [],
      );
    }
  });

  test('when the overview is generated, then it charts every metric ingesta exports', () => {
    const overview = panelQueries()
      .filter((query) => query.dashboard === 'ingesta-overview')
      .map((query) => query.expr)
      .join('\n');
    for (const metric of [
      'http_server_request_duration_seconds_count',
      'http_server_request_duration_seconds_bucket',
      'ingesta_events_published_total',
      'ingesta_events_stored_total',
      'ingesta_event_freshness_seconds_bucket',
      'ingesta_consumer_batch_duration_seconds_bucket',
      'ingesta_consumer_last_poll_timestamp_seconds',
      'ingesta_queue_messages',
      'ingesta_queue_oldest_message_age_seconds',
      'ingesta_db_pool_connections',
      'nodejs_eventloop_lag_p99_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(overview.includes(`${metric}{`), `the overview does not chart ${metric}`);
    }
  });

  test('when the SLO dashboard reads recorded series, then the rules file records each of them', () => {
    const rules = parse(readFileSync(join(repoRoot, rulesFilePath), 'utf8')) as RulesFile;
    const recorded = new Set(
      rules.groups.flatMap((group) => group.rules.flatMap((rule) => ('record' in rule ? [rule.record] : []))),
    );
    const read = panelQueries().flatMap((query) => query.expr.match(/ingesta:[a-z_:0-9]+/g) ?? []);
    assert.ok(read.length > 0);
    for (const name of read) assert.ok(recorded.has(name), `${name} is read by a panel but not recorded`);
  });

  test('when variables are expanded, then no Grafana variable is left in any query', () => {
    for (const { expr } of panelQueries()) {
      const expanded = expandVariables(expr, { namespace: 'ingesta', rateInterval: '2m' });
      assert.ok(!expanded.includes('$'), expanded);
      assert.ok(expanded.includes('namespace="ingesta"'));
    }
  });
});
