/** This release's version (equal to package.json's; a unit test compares them): the default operator image tag. */
export const KUBEVISOR_VERSION = '0.1.0';
