/**
 * VM_IMMUTABLE_FIELDS (what the Pulumi component replaces the VM on) against the CRD's transition rules: a change to
 * each listed field is refused as immutable, a change elsewhere is not.
 */
import type { KubevisorObject } from '../../api';
import { VM_IMMUTABLE_FIELDS, formatFieldError, validateObject } from '../../api';
import { renderVirtualMachine } from '../../constructs';
import { EXAMPLES } from '../../stacks/examples';

/* eslint-disable @typescript-eslint/no-explicit-any -- mutations poke at the rendered object */
type Json = Record<string, any>;

const base = (): Json => renderVirtualMachine('kernel-boot', EXAMPLES['kernel-boot']) as Json;

const CHANGES: Record<(typeof VM_IMMUTABLE_FIELDS)[number], (vm: Json) => void> = {
  'spec.instance.cpu': (vm) => (vm.spec.instance.cpu.sockets = 2),
  'spec.instance.memory': (vm) => (vm.spec.instance.memory.size = '1Gi'),
  'spec.instance.kernel': (vm) => (vm.spec.instance.kernel.cmdline += ' quiet'),
  'spec.instance.interfaces': (vm) => (vm.spec.instance.interfaces[0].mac = '52:54:00:00:00:01'),
  'spec.networks': (vm) => (vm.spec.networks[0] = { name: 'pod', multus: { networkName: 'lan' } }),
};

const immutableErrors = (vm: Json, old: Json) =>
  validateObject(vm as KubevisorObject, old as KubevisorObject)
    .filter((e) => /immutable/.test(e.detail))
    .map(formatFieldError);

test.each(VM_IMMUTABLE_FIELDS.map((f) => [f]))('a change to %s is refused as immutable', (field) => {
  const old = base();
  const changed = base();
  CHANGES[field](changed);
  const errors = immutableErrors(changed, old);
  // The rule sits on the field itself or on its parent (cpu and memory share one on spec.instance).
  const parent = field.split('.').slice(0, -1).join('.');
  const at = errors.map((e) => e.split(':')[0]);
  expect({ errors, onFieldOrParent: at.length === 1 && [field, parent].includes(at[0] ?? '') }).toEqual({
    errors,
    onFieldOrParent: true,
  });
});

test('a change elsewhere is no immutable change', () => {
  const old = base();
  const changed = base();
  changed.spec.runPolicy = 'Halted';
  changed.spec.nodeSelector = { pool: 'vms' };
  expect(immutableErrors(changed, old)).toEqual([]);
});
