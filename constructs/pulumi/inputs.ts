/**
 * Pulumi Inputs for the components' args, as `@pulumi/kubernetes` takes them: any value, at any depth, may be an
 * `Output` or a `Promise` (an auto-named Secret's name, a namespace from another resource, a VM's `vmName`).
 * Validation then runs on the resolved values (the same rules as cdk8s, the same verdict as the API server).
 */
import * as pulumi from '@pulumi/pulumi';
import type { KubevisorObject } from '../../api';
import { validateObject } from '../../api';
import { KubevisorValidationError, assertValid, problemsOf } from '../validation';

type Primitive = string | number | boolean | bigint | null | undefined;

/**
 * `T` with every value, at any depth, also accepted as a `pulumi.Input`, as `@pulumi/kubernetes` takes them: a scalar,
 * a list or a whole object may be an Output or a Promise. Written as an object literal, unions of objects stay unions
 * (a volume still has exactly one source) and the editor still shows each field's documentation.
 */
export type DeepInput<T> = [Exclude<T, undefined>] extends [never]
  ? Extract<T, undefined>
  : // An optional value may also come as an Output that may resolve to nothing (e.g. a resource's namespace).
    Present<Exclude<T, undefined>> | Extract<T, undefined> | (undefined extends T ? pulumi.OutputInstance<T> : never);
// `never` stays never: a union's other variants declare `field?: never`, which is what tells the variants apart.
type Present<T> = [T] extends [never]
  ? never
  : [T] extends [Primitive]
    ? pulumi.Input<T>
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<DeepInput<U>> | pulumi.OutputInstance<T> | Promise<T>
      : T extends object
        ? { readonly [K in keyof T]: DeepInput<T[K]> } | pulumi.OutputInstance<T> | Promise<T>
        : pulumi.Input<T>;

/** Props `P` as component args: each field a {@link DeepInput}. */
export type DeepInputs<P> = { readonly [K in keyof P]: DeepInput<P[K]> };

/** The value itself when nothing in it, at any depth, is an Output or a Promise; undefined otherwise. */
export function knownNow<P>(args: DeepInputs<P>): P | undefined {
  const known = (v: unknown): boolean =>
    pulumi.Output.isInstance(v) || v instanceof Promise
      ? false
      : Array.isArray(v)
        ? v.every(known)
        : v !== null && typeof v === 'object'
          ? Object.values(v).every(known)
          : true;
  return known(args) ? (args as P) : undefined;
}

/**
 * When every value is known: renders and checks the args at once, throwing a `KubevisorValidationError` — call it
 * before `super()`, so that invalid args register nothing (as cdk8s synthesizes nothing).
 */
export function assertKnownArgsValid<P>(
  name: string,
  args: DeepInputs<P>,
  render: (name: string, props: P) => KubevisorObject,
): void {
  const plain = knownNow(args);
  if (plain !== undefined) assertValid([{ path: name, object: render(name, plain) }]);
}

/**
 * The object rendered from the args, for the child resource registered at construction (so preview shows it and
 * dependencies are tracked). Args with Outputs are checked once they resolve: invalid ones fail the deployment with a
 * ResourceError on `parent` naming every field. During preview, values still unknown leave the object unknown; it is
 * checked when they are known.
 */
export function renderedObject<P>(
  name: string,
  args: DeepInputs<P>,
  render: (name: string, props: P) => KubevisorObject,
  parent: pulumi.Resource,
): pulumi.Output<KubevisorObject> {
  const plain = knownNow(args);
  if (plain !== undefined) return pulumi.output(render(name, plain)) as unknown as pulumi.Output<KubevisorObject>; // checked already
  const resolved = pulumi.output(args) as pulumi.Output<unknown>;
  return resolved.apply(async (props) =>
    checkedObject(name, props as P, render, parent, await pulumi.isSecret(resolved)),
  );
}

/**
 * The object rendered from resolved args; a ResourceError on `parent` naming every field when it is invalid. When the
 * args hold a secret, the errors name fields and rules but no value: update logs must not show the secret.
 */
export function checkedObject<P>(
  name: string,
  props: P,
  render: (name: string, props: P) => KubevisorObject,
  parent: pulumi.Resource,
  secret = false,
): KubevisorObject {
  const object = render(name, props);
  const problems = secret
    ? [
        ...new Set(
          validateObject(object).map((e) => `${e.field || '<root>'}: ${e.type} (value hidden: the args hold a secret)`),
        ),
      ]
    : problemsOf(object);
  if (problems.length) {
    throw new pulumi.ResourceError(new KubevisorValidationError(problems.map((p) => `[${name}] ${p}`)).message, parent);
  }
  return object;
}
