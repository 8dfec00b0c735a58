/** The operator's RBAC rules: the install's (constructs/platform/rbac-rules.ts), for the operator and the e2e suites. */
export * from '../constructs/platform/rbac-rules';
