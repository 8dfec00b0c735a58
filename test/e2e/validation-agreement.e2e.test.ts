/**
 * The CRDs against a real kube-apiserver: they install, every synthesized example is accepted (server-side
 * dry-run apply), objects read back carry the defaults the constructs apply, and — the point — every case of the
 * bad-input table is rejected by the API server as it is at synth time, on the same field path.
 */
import type { KubevisorObject, OpenAPISchema } from '../../api';
import { KINDS, apiVersionOf, validateObject } from '../../api';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES } from '../../stacks/examples';
import { BAD_INPUT_CASES, VALID_UPDATES } from '../bad-input/cases';
import { KubeApiError } from './harness/kube-client';
import type { KubeObject } from './harness/kube-client';
import { sharedControlPlane } from './harness/shared';
import { installCrds } from './harness/crds';

const client = sharedControlPlane();
const namespace = `e2e-agreement-${Date.now().toString(36)}`;

interface Verdict {
  rejected: boolean;
  /** Field paths the verdict names (API server: details.causes[].field; synth: FieldError.field). */
  fields: string[];
  text: string;
}

const inNs = (o: KubevisorObject, name?: string): KubeObject =>
  ({ ...structuredClone(o), metadata: { ...o.metadata, namespace, ...(name ? { name } : {}) } }) as KubeObject;

async function plural(o: KubevisorObject): Promise<string> {
  return `/apis/${o.apiVersion}/namespaces/${namespace}/${(await client.resource(o.apiVersion, o.kind)).plural}`;
}

/** Sends the object as kubectl does (strict field validation); `before` makes it an update of that object. */
async function apiServerVerdict(object: KubevisorObject, before?: KubevisorObject, name?: string): Promise<Verdict> {
  const base = await plural(object);
  try {
    if (before) {
      const created = await client.request<KubeObject>('POST', base, {
        body: inNs(before, name),
        query: { fieldValidation: 'Strict' },
      });
      try {
        const next = inNs(object, name);
        next.metadata.resourceVersion = created.metadata.resourceVersion;
        await client.request('PUT', `${base}/${name}`, {
          body: next,
          query: { fieldValidation: 'Strict', dryRun: 'All' },
        });
      } finally {
        await client.request('DELETE', `${base}/${name}`);
      }
    } else {
      await client.request('POST', base, {
        body: inNs(object, name),
        query: { fieldValidation: 'Strict', dryRun: 'All' },
      });
    }
    return { rejected: false, fields: [], text: 'accepted' };
  } catch (e) {
    if (!(e instanceof KubeApiError) || (e.code !== 422 && e.code !== 400)) throw e;
    const fields = e.causes.map((c) => c.field ?? '');
    // Strict decoding errors (400) name the unknown field only in the message.
    const unknown = /unknown field "([^"]+)"/.exec(e.serverMessage);
    if (unknown) fields.push(unknown[1]);
    return { rejected: true, fields, text: e.serverMessage };
  }
}

function synthVerdict(object: KubevisorObject, before?: KubevisorObject): Verdict {
  const errors = validateObject(object, before);
  return {
    rejected: errors.length > 0,
    fields: errors.map((e) => e.field),
    text: errors.map((e) => e.detail).join('; '),
  };
}

/** The API server reports an error on the object's root as `<nil>` or without a field. */
const sameField = (expected: string, actual: string) =>
  expected === actual || (expected === '' && (actual === '<nil>' || actual === ''));

/** Removes every value equal to its schema default: what a user who relies on defaults would send. */
function stripDefaults(s: OpenAPISchema | undefined, v: unknown): unknown {
  if (!s || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => stripDefaults(s.items, x));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const ps = s.properties?.[k] ?? s.additionalProperties;
    if (ps?.default !== undefined && JSON.stringify(ps.default) === JSON.stringify(x)) continue;
    out[k] = stripDefaults(ps, x);
  }
  return out;
}

beforeAll(async () => {
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await installCrds(client);
});

afterAll(async () => {
  await client.delete('v1', 'Namespace', namespace, undefined, { ignoreNotFound: true });
  client.close();
});

test('deploy/crds are established and served with their printer columns and short names', async () => {
  for (const info of KINDS) {
    const crd = await client.get<KubeObject & { spec: { names: { shortNames: string[] } } }>(
      'apiextensions.k8s.io/v1',
      'CustomResourceDefinition',
      `${info.plural}.${info.group ?? 'kubevisor.io'}`,
    );
    expect(crd.spec.names.shortNames).toEqual(info.shortNames);
    expect((await client.resource(apiVersionOf(info), info.kind)).plural).toBe(info.plural);
  }
});

test('server-side dry-run apply of every synthesized example succeeds', async () => {
  for (const [name, props] of Object.entries(EXAMPLES)) {
    const applied = await client.apply(inNs(renderVirtualMachine(name, props)), { dryRun: true });
    expect(applied.metadata.name).toBe(name);
  }
});

test('objects read back from the API server carry the defaults the constructs apply', async () => {
  const schema = KINDS[0].schema;
  for (const [name, props] of Object.entries(EXAMPLES)) {
    const synthesized = renderVirtualMachine(name, props);
    const sent = stripDefaults(schema, synthesized) as KubevisorObject;
    expect(sent).not.toEqual(synthesized); // defaults were really left to the server
    await client.create(inNs(sent, `defaults-${name}`));
    const stored = await client.get<KubeObject>(
      'kubevisor.io/v1alpha1',
      'VirtualMachine',
      `defaults-${name}`,
      namespace,
    );
    expect(stored.spec).toEqual(synthesized.spec);
  }
});

test('validation agreement: every bad input is rejected by both, on the same field; every valid object accepted', async () => {
  const rows: string[] = [];
  let agreed = 0;
  const disagreements: string[] = [];
  const cases = [
    ...BAD_INPUT_CASES.map((c, i) => ({ ...c, bad: true, id: `case-${i}` })),
    ...Object.entries(EXAMPLES).map(([n, p]) => ({
      name: `example ${n}`,
      object: renderVirtualMachine(n, p),
      before: undefined,
      field: '',
      bad: false,
      id: `ok-${n}`,
    })),
    ...VALID_UPDATES.map((u, i) => ({ ...u, field: '', bad: false, id: `upd-${i}` })),
  ];
  for (const c of cases) {
    const synth = synthVerdict(c.object, c.before);
    // Updates create a real object first, so each gets a name of its own; creates are dry runs and keep theirs.
    const api = await apiServerVerdict(c.object, c.before, c.before ? c.id : undefined);
    const fieldOk = !c.bad || (synth.fields.includes(c.field) && api.fields.some((f) => sameField(c.field, f)));
    // The API server's words too: the table's text is what a user reads from kubectl as well as from synth.
    const textOk = !c.bad || !('message' in c) || api.text.includes(c.message);
    const ok = synth.rejected === c.bad && api.rejected === c.bad && fieldOk && textOk;
    if (ok) agreed++;
    else disagreements.push(`${c.name}: synth ${JSON.stringify(synth)} api-server ${JSON.stringify(api)}`);
    const show = (v: Verdict) => (v.rejected ? 'rejected' : 'accepted');
    rows.push(
      `${c.name.padEnd(48)} ${show(synth).padEnd(9)} ${show(api).padEnd(9)} ${c.bad ? c.field || '<root>' : '-'}`,
    );
  }
  process.stdout.write(
    `${'case'.padEnd(48)} ${'synth'.padEnd(9)} ${'apiserver'.padEnd(9)} field\n${rows.join('\n')}\nvalidation agreement: ${agreed}/${cases.length}\n`,
  );
  expect(disagreements).toEqual([]);
  expect(cases.length).toBeGreaterThanOrEqual(60 + Object.keys(EXAMPLES).length);
});
