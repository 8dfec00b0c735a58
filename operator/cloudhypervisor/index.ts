// The Cloud Hypervisor REST client and its types. (spec.ts and json-schema.ts are build/test tooling: not exported.)
export * from './client';
export * from './error';
export * from './types';
export * from './wait-for-socket';
