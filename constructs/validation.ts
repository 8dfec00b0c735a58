/** Synth-time validation shared by the cdk8s and Pulumi frontends. */
import type { KubevisorObject } from '../api';
import { explainFieldErrors, validateObject } from '../api';

/** One object to check and where it was declared (construct path or Pulumi resource name). */
export interface Declared {
  readonly path: string;
  readonly object: KubevisorObject;
}

/** Thrown when objects are invalid; `problems` lists every error as `[path] field: Type: detail`. */
export class KubevisorValidationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`kubevisor: ${problems.length} validation error(s):\n  ${problems.join('\n  ')}`);
    this.name = 'KubevisorValidationError';
  }
}

/**
 * Every validation error of one object, formatted `field: Type: detail`: the API server's verdict, one line per
 * problem, naming the offending value (api/explain.ts).
 */
export function problemsOf(object: KubevisorObject): string[] {
  return explainFieldErrors(validateObject(object));
}

/** Throws one {@link KubevisorValidationError} listing every error of every object. */
export function assertValid(objects: readonly Declared[]): void {
  const problems = objects.flatMap((d) => problemsOf(d.object).map((p) => `[${d.path}] ${p}`));
  if (problems.length) throw new KubevisorValidationError(problems);
}
