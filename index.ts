/**
 * kubevisor: Cloud Hypervisor virtual machines on Kubernetes, declared as code.
 *
 * The root entry point holds the API contract and the renderers; the frontends live in `kubevisor/cdk8s` and
 * `kubevisor/pulumi` so that each pulls in only its own framework.
 */
export * from './api';
export * from './constructs';
