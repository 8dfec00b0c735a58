// The operator's runtime layer: Kubernetes client, informers, work queue and workers, leader
// election, metrics, health endpoints, graceful shutdown and logs. Generic: nothing here knows a
// VirtualMachine; operator/controller/ builds on it.
export * from './backoff';
export * from './client';
export * from './config';
export * from './errors';
export * from './events';
export * from './health';
export * from './indexers';
export * from './informer';
export * from './json-patch';
export * from './leader';
export * from './log';
export * from './metrics';
export * from './object';
export * from './rate-limiter';
export * from './request-count';
export * from './shutdown';
export * from './watch-stream';
export * from './workers';
export * from './workqueue';
