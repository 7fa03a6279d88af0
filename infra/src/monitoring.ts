// What the monitoring stack selects, in one place: the kube-prometheus-stack values the cluster
// add-ons install, and the names the chart's objects must match. Plain data (no Pulumi imports)
// so the chart tests read the same values the stack installs.

/** Namespace and release name of kube-prometheus-stack. */
export const monitoringNamespace = 'monitoring';
export const monitoringRelease = 'kube-prometheus-stack';

/** Annotation of a dashboard ConfigMap naming its Grafana folder (the chart sets grafana_folder). */
export const grafanaFolderAnnotation = 'grafana_folder';
/** Label the Grafana sidecar loads dashboard ConfigMaps by. */
export const grafanaDashboardLabel = 'grafana_dashboard';

/**
 * kube-prometheus-stack values. By default the chart's Prometheus selects only ServiceMonitors,
 * PodMonitors, Probes and PrometheusRules labelled `release: kube-prometheus-stack`
 * (`*SelectorNilUsesHelmValues: true`), so an app chart without that label is silently ignored.
 * Here every selector is empty (select all) in every namespace: what a release ships is scraped
 * and evaluated, whatever its labels.
 */
export const kubePrometheusStackValues = {
  prometheus: {
    prometheusSpec: {
      serviceMonitorSelectorNilUsesHelmValues: false,
      serviceMonitorSelector: {},
      serviceMonitorNamespaceSelector: {},
      podMonitorSelectorNilUsesHelmValues: false,
      podMonitorSelector: {},
      podMonitorNamespaceSelector: {},
      probeSelectorNilUsesHelmValues: false,
      probeSelector: {},
      probeNamespaceSelector: {},
      ruleSelectorNilUsesHelmValues: false,
      ruleSelector: {},
      ruleNamespaceSelector: {},
    },
  },
  grafana: {
    sidecar: {
      dashboards: {
        enabled: true,
        label: grafanaDashboardLabel,
        labelValue: '1',
        searchNamespace: 'ALL',
        // A dashboard ConfigMap's grafana_folder annotation names its folder in Grafana.
        folderAnnotation: grafanaFolderAnnotation,
        provider: { foldersFromFilesStructure: true },
      },
    },
  },
};

/** A Kubernetes label selector as the Prometheus Operator reads it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

/** Whether a label selector selects an object with these labels; an empty selector selects everything. */
export function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpression = (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    const listed = value !== undefined && (expression.values ?? []).includes(value);
    if (expression.operator === 'In') return listed;
    if (expression.operator === 'NotIn') return !listed;
    if (expression.operator === 'Exists') return value !== undefined;
    return value === undefined;
  });
  return byLabel && byExpression;
}
