/**
 * operator/rbac.ts's rules as cdk8s-plus roles bound to a ServiceAccount: the one source of what each operator
 * process may do, for the install and for the e2e suites.
 */
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';
import type { PolicyRule } from '../platform/rbac-rules';

/** One API resource of a rule (a resourceName when the rule names objects), as cdk8s-plus takes it. */
function endpoint(
  apiGroup: string,
  resourceType: string,
  resourceName?: string,
): kplus.IApiResource & kplus.IApiEndpoint {
  const resource: kplus.IApiResource = {
    apiGroup: apiGroup === '' ? 'core' : apiGroup,
    resourceType,
    ...(resourceName ? { resourceName } : {}),
  };
  return { ...resource, asApiResource: () => resource, asNonApiResource: () => undefined };
}

const endpointsOf = (rule: PolicyRule) =>
  rule.apiGroups.flatMap((g) =>
    rule.resources.flatMap((r) =>
      rule.resourceNames?.length ? rule.resourceNames.map((n) => endpoint(g, r, n)) : [endpoint(g, r)],
    ),
  );

/** A ClusterRole of `rules` and its binding to `subject`, both named `name`. */
export function clusterGrant(
  scope: Construct,
  id: string,
  name: string,
  rules: readonly PolicyRule[],
  subject: kplus.ServiceAccount,
): kplus.ClusterRole {
  const role = new kplus.ClusterRole(scope, id, { metadata: { name } });
  for (const rule of rules) role.allow([...rule.verbs], ...endpointsOf(rule));
  new kplus.ClusterRoleBinding(scope, `${id}-binding`, { metadata: { name }, role }).addSubjects(subject);
  return role;
}

/** A Role of `rules` in `namespace` and its binding to `subject`, both named `name`. */
export function namespacedGrant(
  scope: Construct,
  id: string,
  name: string,
  namespace: string,
  rules: readonly PolicyRule[],
  subject: kplus.ServiceAccount,
): kplus.Role {
  const role = new kplus.Role(scope, id, { metadata: { name, namespace } });
  for (const rule of rules) role.allow([...rule.verbs], ...endpointsOf(rule));
  new kplus.RoleBinding(scope, `${id}-binding`, { metadata: { name, namespace }, role }).addSubjects(subject);
  return role;
}
