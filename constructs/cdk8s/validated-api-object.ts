/**
 * The ApiObject of kubevisor's cdk8s constructs: validated as it is finally written — after JSON patches and chart
 * labels — both in `app.synth()` (every error of every construct at once, through the construct's validation) and in
 * `chart.toJson()`/`Testing.synth()`, which run no validations of their own.
 */
import { ApiObject } from 'cdk8s';
import type { KubevisorObject } from '../../api';
import { KubevisorValidationError, problemsOf } from '../validation';

export class ValidatedApiObject extends ApiObject {
  /** Every problem of the object as it would be written, formatted `field: Type: detail`. */
  public problems(): string[] {
    return problemsOf(super.toJson() as KubevisorObject);
  }

  /** The object as written; throws a {@link KubevisorValidationError} naming the construct path when it is invalid. */
  public override toJson(): unknown {
    const json = super.toJson();
    const problems = problemsOf(json as KubevisorObject);
    if (problems.length)
      throw new KubevisorValidationError(problems.map((p) => `[${this.node.scope?.node.path}] ${p}`));
    return json;
  }
}
