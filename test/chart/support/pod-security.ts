import type { PodSpecSource } from './chart.ts';

/** Volume types the Pod Security Standard "restricted" allows. */
const allowedVolumeTypes = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/**
 * Every rule of the Pod Security Standard "restricted" (Kubernetes 1.33) plus this chart's own:
 * read-only root filesystem with an emptyDir /tmp, requests and limits, no service account token.
 */
export function restrictedViolations({ owner, spec }: PodSpecSource): string[] {
  const violations: string[] = [];
  const fail = (message: string) => violations.push(`${owner}: ${message}`);
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) fail('uses host namespaces');
  if (pod.runAsUser === 0) fail('pod runs as uid 0');
  if (spec.automountServiceAccountToken !== false) fail('mounts a service account token');
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    for (const type of types) if (!allowedVolumeTypes.has(type)) fail(`volume ${volume.name} is a ${type}`);
  }
  const containers = [
    ...(spec.initContainers ?? []),
    ...spec.containers,
    ...(spec.ephemeralContainers ?? []),
  ];
  for (const container of containers) {
    const where = `container ${container.name}`;
    const context = container.securityContext ?? {};
    if (context.privileged) fail(`${where} is privileged`);
    if (context.allowPrivilegeEscalation !== false) fail(`${where} allows privilege escalation`);
    if (!(context.capabilities?.drop ?? []).includes('ALL')) fail(`${where} does not drop ALL capabilities`);
    for (const added of context.capabilities?.add ?? []) {
      if (added !== 'NET_BIND_SERVICE') fail(`${where} adds capability ${added}`);
    }
    if ((context.runAsNonRoot ?? pod.runAsNonRoot) !== true) fail(`${where} may run as root`);
    if (context.runAsUser === 0) fail(`${where} runs as uid 0`);
    const seccomp = context.seccompProfile?.type ?? pod.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') fail(`${where} has no seccomp profile`);
    for (const port of container.ports ?? [])
      if (port.hostPort) fail(`${where} uses hostPort ${port.hostPort}`);
    if (context.readOnlyRootFilesystem !== true) fail(`${where} has a writable root filesystem`);
    const tmp = (container.volumeMounts ?? []).find(
      (mount: { mountPath: string }) => mount.mountPath === '/tmp',
    );
    const tmpVolume = (spec.volumes ?? []).find((volume: { name: string }) => volume.name === tmp?.name);
    if (!tmpVolume?.emptyDir) fail(`${where} has no emptyDir at /tmp`);
    for (const kind of ['requests', 'limits']) {
      for (const resource of ['cpu', 'memory']) {
        if (!container.resources?.[kind]?.[resource])
          fail(`${where} has no ${resource} ${kind.slice(0, -1)}`);
      }
    }
  }
  return violations;
}
