// Counts API requests by Kubernetes verb (get, list, watch, create, update, patch, delete,
// deletecollection — the verbs of RBAC and the API server's own apiserver_request_total), so a
// benchmark can say "N VMs cost M patches" without parsing server logs.

export type KubeVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export const KUBE_VERBS: readonly KubeVerb[] = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
];

export type RequestCounts = Readonly<Record<KubeVerb, number>> & { readonly total: number };

/** Requests by verb and resource (`pods`, `virtualmachines/status`, `''` for discovery and other non-resource paths). */
export type RequestCountsByResource = readonly {
  readonly verb: KubeVerb;
  readonly resource: string;
  readonly count: number;
}[];

export class RequestCounter {
  private readonly counts = new Map<KubeVerb, number>();
  /** verb → resource → count */
  private readonly byResource = new Map<KubeVerb, Map<string, number>>();

  count(verb: KubeVerb, resource = ''): void {
    this.counts.set(verb, (this.counts.get(verb) ?? 0) + 1);
    let resources = this.byResource.get(verb);
    if (!resources) this.byResource.set(verb, (resources = new Map()));
    resources.set(resource, (resources.get(resource) ?? 0) + 1);
  }

  /** A copy, by verb and resource. */
  snapshotByResource(): RequestCountsByResource {
    const out: { verb: KubeVerb; resource: string; count: number }[] = [];
    for (const verb of KUBE_VERBS) {
      for (const [resource, count] of this.byResource.get(verb) ?? []) out.push({ verb, resource, count });
    }
    return out;
  }

  /** A copy: later requests do not change it. */
  snapshot(): RequestCounts {
    const out = { total: 0 } as Record<KubeVerb | 'total', number>;
    for (const verb of KUBE_VERBS) {
      out[verb] = this.counts.get(verb) ?? 0;
      out.total += out[verb];
    }
    return out;
  }
}

/**
 * The verb of a request, from its method and path as the API server derives it: GET on a
 * collection is `list` (or `watch` with `watch=true`), GET on one object (or a subresource, or a
 * non-resource path such as discovery) is `get`; POST is `create`; PUT `update`; PATCH `patch`;
 * DELETE on a collection `deletecollection`.
 */
export function verbOf(method: string, pathname: string, watchParam?: string | null): KubeVerb {
  const m = method.toUpperCase();
  const collection = isCollectionPath(pathname);
  switch (m) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return collection ? 'deletecollection' : 'delete';
    default:
      if (watchParam === 'true' || watchParam === '1' || /^\/apis?\/(?:.+\/)?watch\//.test(pathname)) return 'watch';
      return collection ? 'list' : 'get';
  }
}

/**
 * The resource of a request path as RBAC names it, with its subresource: `pods`, `pods/binding`,
 * `virtualmachines/status`, `namespaces` (and `namespaces/status`); `''` for discovery and non-resource paths.
 * The API group is left out: the operator's resources have distinct names.
 */
export function resourceOf(pathname: string): string {
  const parts = pathname.split('/').filter((p) => p !== '');
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 3) rest = parts.slice(3);
  else return '';
  if (rest[0] === 'watch') rest = rest.slice(1);
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    rest = rest.slice(2);
  }
  if (rest.length === 0) return '';
  return rest.length >= 3 ? `${rest[0]}/${rest[2]}` : rest[0];
}

/** True for `/api/v1/pods`, `/api/v1/namespaces/x/pods`, `/apis/g/v/namespaces/x/things`, `/api/v1/namespaces`. */
function isCollectionPath(pathname: string): boolean {
  const parts = pathname.split('/').filter((p) => p !== '');
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 3) rest = parts.slice(3);
  else return false; // discovery roots, /healthz, /version, …
  // namespaces/<ns>/<resource>… (but namespaces/<ns>/status|finalize are the Namespace's own subresources)
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    rest = rest.slice(2);
  }
  return rest.length === 1;
}
