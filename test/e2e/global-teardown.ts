// Jest globalTeardown of the e2e project: stops the control plane globalSetup started.
import type { ControlPlane } from './harness/control-plane';
import { globalKey } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const controlPlane = (globalThis as Record<string, unknown>)[globalKey] as ControlPlane | undefined;
  // If globalSetup failed, it has already stopped what it started.
  if (!controlPlane) return;
  delete (globalThis as Record<string, unknown>)[globalKey];
  await controlPlane.stop();
}
