// The e2e tests talk to the API server with the operator's own REST client (operator/kube), so the client the
// controller runs on is the one every e2e test exercises too.
export { KubeApiError, KubeClient } from '../../../operator/kube';
export type { KubeCredentials, KubeObject, KubeStatusCause } from '../../../operator/kube';
