// core/v1 Events that explain what the operator did, and the de-duplication that keeps a
// reconcile loop that repeats itself from flooding etcd: an identical event (same object, type,
// reason, message) within the window bumps `count` and `lastTimestamp` of the event already
// written, as client-go's EventCorrelator does, instead of creating another.
import type { KubeObject } from './object';

export type EventType = 'Normal' | 'Warning';

export interface EventSpec {
  type: EventType;
  /** UpperCamelCase, machine-readable: e.g. `PodCreated`, `BootFailed`. */
  reason: string;
  /** Human-readable; cut to 1024 characters (the events API's limit). */
  message: string;
  /** What was done, e.g. `Create`; optional. */
  action?: string;
}

/** The name the operator reports as, in `source.component` and `reportingComponent`. */
export const REPORTING_COMPONENT = 'kubevisor';
const maxMessageLength = 1024;

export interface EventIdentity {
  reportingComponent: string;
  reportingInstance: string;
}

/** Seconds precision: Event timestamps are metav1.Time, which the API server stores to the second. */
export function eventTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let sequence = 0;

/**
 * A new core/v1 Event about `involved`. Its namespace is the object's (`default` for a
 * cluster-scoped object, as the API server requires); its name is the object's name plus a
 * unique hex suffix, as client-go names them.
 */
export function buildEvent(involved: KubeObject, spec: EventSpec, identity: EventIdentity, now: Date): KubeObject {
  const meta = involved.metadata;
  const stamp = eventTimestamp(now);
  const suffix = (BigInt(now.getTime()) * 1_000_000n + BigInt(sequence++ % 1_000_000)).toString(16);
  const involvedObject: Record<string, string> = {
    apiVersion: involved.apiVersion,
    kind: involved.kind,
    name: meta.name ?? '',
  };
  if (meta.namespace) involvedObject.namespace = meta.namespace;
  if (meta.uid) involvedObject.uid = meta.uid;
  if (meta.resourceVersion) involvedObject.resourceVersion = meta.resourceVersion;
  const event: KubeObject = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${meta.name ?? 'object'}.${suffix}`, namespace: meta.namespace || 'default' },
    involvedObject,
    type: spec.type,
    reason: spec.reason,
    message:
      spec.message.length > maxMessageLength ? spec.message.slice(0, maxMessageLength - 3) + '...' : spec.message,
    source: { component: identity.reportingComponent },
    reportingComponent: identity.reportingComponent,
    reportingInstance: identity.reportingInstance,
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
  };
  if (spec.action) event.action = spec.action;
  return event;
}

/** What the cache remembers about an event it wrote. */
export interface RecordedEvent {
  namespace: string;
  name: string;
  count: number;
  /** Monotonic milliseconds of the last emission. */
  lastSeen: number;
}

/**
 * Remembers recent events by identity, bounded in size (oldest forgotten first). Also serialises
 * emissions of one identity, so two identical events raised at once make one event with count 2.
 */
export class EventCache {
  private readonly entries = new Map<string, RecordedEvent>();
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    readonly windowMs: number,
    private readonly maxEntries = 4096,
  ) {}

  static keyOf(involved: KubeObject, spec: EventSpec): string {
    const m = involved.metadata;
    return [
      involved.apiVersion,
      involved.kind,
      m.namespace ?? '',
      m.name ?? '',
      m.uid ?? '',
      spec.type,
      spec.reason,
      spec.message,
    ].join('\u0000');
  }

  /** The entry to bump, if one was emitted within the window. */
  recent(key: string, now: number): RecordedEvent | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now - entry.lastSeen > this.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  remember(key: string, entry: RecordedEvent): void {
    // Re-insert so Map order is least-recently-used first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Runs `task` after any earlier task of the same key has settled. */
  serialise<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }
}
