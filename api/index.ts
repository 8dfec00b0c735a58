/** The kubevisor API contract: kinds, types, CRDs, defaults and validation — one source for every frontend. */
export * from './common';
export * from './schema';
export * from './virtualmachine';
export * from './virtualmachinemigration';
export * from './infrastructure';
export * from './kinds';
export * from './version';
export type { FieldError } from './validate';
export { formatFieldError } from './validate';
export { explainFieldErrors, quantityHint } from './explain';
export { parseQuantity, compareQuantities, formatBytes } from './cel/quantity';
