/**
 * Per-test KubeApiStandin plus a cleanup list: everything a test starts (informers, electors,
 * clients, servers) is registered and stopped in afterEach, even when the test fails.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient, type KubeClientOptions } from '../../../operator/kube/client';
import { KubeApiStandin } from './kube-api-standin';

export interface StandinContext {
  readonly standin: KubeApiStandin;
  /** A client of the stand-in (token `test`), closed after the test. */
  readonly client: KubeClient;
  /** Another client with its own bearer token (so the stand-in can partition it), closed after the test. */
  clientWithToken(token: string, options?: KubeClientOptions): KubeClient;
  /** Runs `stop` after the test, before the stand-in stops (last registered runs first). */
  cleanup(stop: () => unknown): void;
}

export function useKubeStandin(): () => StandinContext {
  let context: StandinContext | undefined;
  let stops: (() => unknown)[] = [];
  beforeEach(async () => {
    const standin = await KubeApiStandin.start();
    stops = [];
    const cleanup = (stop: () => unknown): void => void stops.push(stop);
    const clientWithToken = (token: string, options?: KubeClientOptions): KubeClient => {
      const client = new KubeClient({ server: standin.url, token }, options);
      cleanup(() => client.close());
      return client;
    };
    context = { standin, client: clientWithToken('test'), clientWithToken, cleanup };
  });
  afterEach(async () => {
    const current = context;
    context = undefined;
    const errors: unknown[] = [];
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        errors.push(error);
      }
    }
    await current?.standin.stop();
    if (errors.length > 0) throw errors[0];
  });
  return () => {
    if (!context) throw new Error('stand-in fixture used outside a test');
    return context;
  };
}

/** Polls `condition` every 10 ms; bounded so a broken condition fails the test instead of hanging. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}
