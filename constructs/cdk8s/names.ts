import { Names } from 'cdk8s';
import type { Construct } from 'constructs';

/**
 * A DNS label (≤ 63 chars, [a-z0-9-]) derived from the construct path with cdk8s' hash suffix. cdk8s'
 * `Names.toDnsLabel` keeps characters such as `_`, which Kubernetes rejects in VM names (they become hostnames).
 */
export function dnsLabelOf(c: Construct): string {
  return Names.toDnsLabel(c, { maxLen: 63 })
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
}
