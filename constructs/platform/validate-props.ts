/**
 * Checks of the platform and node-setup props, before anything is rendered: each problem as `field: Invalid value:
 * <value>: <rule>`, like the API server words its own. Both frontends throw them in one KubevisorValidationError.
 */
import { NODE_SETUP_LIMITS } from './limits';
import type { ContainerResources, KubevisorPlatformProps, NodeSetupProps, Toleration } from './props';

type Check = (problems: string[]) => void;

const show = (v: unknown) => JSON.stringify(v);
const invalid = (problems: string[], field: string, value: unknown, rule: string) =>
  problems.push(`${field}: Invalid value: ${show(value)}: ${rule}`);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// A label key: optional DNS-subdomain prefix, then a name of at most 63 characters.
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// An image reference without whitespace or control characters (the kubelet refuses those; the rest is the registry's).
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const IMAGE = /^[^\s\u0000-\u001f]{1,512}$/;

function wholeNumber(problems: string[], field: string, v: number | undefined, min: number, max: number) {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min || v > max)
    invalid(problems, field, v, `must be a whole number from ${min} to ${max}`);
}

function image(problems: string[], field: string, v: string | undefined) {
  if (v !== undefined && !IMAGE.test(v))
    invalid(problems, field, v, 'must be an image reference (no spaces, at most 512 characters)');
}

function namespace(problems: string[], field: string, v: string | undefined) {
  if (v !== undefined && !DNS_LABEL.test(v))
    invalid(problems, field, v, 'must be a DNS label (a-z, 0-9, -; at most 63)');
}

function resources(problems: string[], field: string, r: ContainerResources | undefined) {
  if (!r) return;
  wholeNumber(problems, `${field}.cpuRequestMillis`, r.cpuRequestMillis, 1, 1_000_000);
  wholeNumber(problems, `${field}.cpuLimitMillis`, r.cpuLimitMillis, 1, 1_000_000);
  wholeNumber(problems, `${field}.memoryRequestMiB`, r.memoryRequestMiB, 16, 1_048_576);
  wholeNumber(problems, `${field}.memoryLimitMiB`, r.memoryLimitMiB, 16, 1_048_576);
  const pairs = [
    ['cpuRequestMillis', r.cpuRequestMillis, 'cpuLimitMillis', r.cpuLimitMillis],
    ['memoryRequestMiB', r.memoryRequestMiB, 'memoryLimitMiB', r.memoryLimitMiB],
  ] as const;
  for (const [req, a, lim, b] of pairs) {
    if (a !== undefined && b !== undefined && a > b)
      invalid(problems, `${field}.${req}`, a, `must not exceed ${lim} (${b})`);
  }
}

function tolerations(problems: string[], field: string, list: readonly Toleration[] | undefined) {
  list?.forEach((t, i) => {
    const at = `${field}[${i}]`;
    if (t.key !== undefined && !LABEL_KEY.test(t.key)) invalid(problems, `${at}.key`, t.key, 'must be a label key');
    if (t.value !== undefined && !LABEL_VALUE.test(t.value))
      invalid(problems, `${at}.value`, t.value, 'must be a label value');
    const operator = t.operator ?? (t.value === undefined ? 'Exists' : 'Equal');
    if (operator === 'Exists' && t.value !== undefined)
      invalid(problems, `${at}.value`, t.value, 'must be empty when operator is Exists');
    if (operator === 'Equal' && !t.key)
      invalid(problems, `${at}.key`, t.key ?? '', 'is required when operator is Equal');
  });
}

function nodeSelector(problems: string[], field: string, selector: Readonly<Record<string, string>> | undefined) {
  for (const [k, v] of Object.entries(selector ?? {})) {
    if (!LABEL_KEY.test(k)) invalid(problems, `${field}[${k}]`, k, 'must be a label key');
    if (!LABEL_VALUE.test(v)) invalid(problems, `${field}[${k}]`, v, 'must be a label value');
  }
}

function priorityClass(problems: string[], field: string, v: string | undefined) {
  if (v !== undefined && (v.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v))) {
    invalid(problems, field, v, 'must be a DNS subdomain (the name of a PriorityClass)');
  }
}

/** Every problem of the platform props. */
export function platformPropsProblems(p: KubevisorPlatformProps): string[] {
  const problems: string[] = [];
  const checks: Check[] = [
    (x) => image(x, 'image', p.image),
    (x) => namespace(x, 'namespace', p.namespace),
    (x) => wholeNumber(x, 'controller.replicas', p.controller?.replicas, 1, 10),
    (x) => resources(x, 'controller.resources', p.controller?.resources),
    (x) => priorityClass(x, 'controller.priorityClassName', p.controller?.priorityClassName),
    (x) => wholeNumber(x, 'controller.nodeLossGraceSeconds', p.controller?.nodeLossGraceSeconds, 10, 86_400),
    (x) => namespace(x, 'controller.watchNamespace', p.controller?.watchNamespace),
    (x) => nodeSelector(x, 'controller.nodeSelector', p.controller?.nodeSelector),
    (x) => tolerations(x, 'controller.tolerations', p.controller?.tolerations),
    (x) =>
      // Tolerating every taint, a controller on an unreachable node would never be evicted (node agents may; it not).
      p.controller?.tolerations?.forEach((t, i) => {
        if (!t.key)
          invalid(
            x,
            `controller.tolerations[${i}].key`,
            '',
            'is required: the controller must not tolerate every taint',
          );
      }),
    (x) => {
      // JavaScript callers and YAML-fed programs can pass anything; a string "false" must not turn the provider on.
      const c: unknown = p.clusterApi;
      if (c === undefined || typeof c === 'boolean') return;
      if (typeof c !== 'object' || c === null || Array.isArray(c)) {
        invalid(x, 'clusterApi', c, 'must be true, false or { loadBalancers?: boolean }');
        return;
      }
      for (const [k, v] of Object.entries(c)) {
        if (k !== 'loadBalancers') invalid(x, `clusterApi.${k}`, v, 'is not an option (loadBalancers is)');
        else if (v !== undefined && typeof v !== 'boolean')
          invalid(x, 'clusterApi.loadBalancers', v, 'must be true or false');
      }
    },
    (x) => resources(x, 'daemon.resources', p.daemon?.resources),
    (x) => priorityClass(x, 'daemon.priorityClassName', p.daemon?.priorityClassName),
    (x) => tolerations(x, 'daemon.tolerations', p.daemon?.tolerations),
    (x) => {
      const dir = p.daemon?.kubeletRootDir;
      // The daemon mounts it from the host with Bidirectional propagation: an absolute, normalized path only.
      if (
        dir !== undefined &&
        (!/^\/[^\0]*$/.test(dir) || dir.split('/').some((s) => s === '..' || s === '.') || dir === '/')
      ) {
        invalid(x, 'daemon.kubeletRootDir', dir, "must be an absolute path other than / without '.' or '..'");
      }
    },
  ];
  for (const check of checks) check(problems);
  return problems;
}

/** Every problem of the node-setup props. */
export function nodeSetupPropsProblems(p: NodeSetupProps): string[] {
  const problems: string[] = [];
  image(problems, 'image', p.image);
  namespace(problems, 'namespace', p.namespace);
  const l = NODE_SETUP_LIMITS;
  wholeNumber(problems, 'hugepages2Mi', p.hugepages2Mi, l.hugepages2Mi.min, l.hugepages2Mi.max);
  wholeNumber(problems, 'hugepages1Gi', p.hugepages1Gi, l.hugepages1Gi.min, l.hugepages1Gi.max);
  wholeNumber(problems, 'recheckSeconds', p.recheckSeconds, l.recheckSeconds.min, l.recheckSeconds.max);
  nodeSelector(problems, 'nodeSelector', p.nodeSelector);
  tolerations(problems, 'tolerations', p.tolerations);
  return problems;
}
