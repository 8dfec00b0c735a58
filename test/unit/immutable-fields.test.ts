/**
 * VM_IMMUTABLE_FIELDS (what the Pulumi component replaces the VM on) against the CRD's transition rules: a change to
 * each listed field is refused by a rule that compares with the old object, at that field or above it; a change
 * elsewhere is refused by none.
 */
import type { KubevisorObject } from '../../api';
import { VM_IMMUTABLE_FIELDS, formatFieldError, validateObject } from '../../api';
import { renderVirtualMachine } from '../../constructs';
import type { VirtualMachineProps } from '../../constructs';
import { EXAMPLES } from '../../stacks/examples';

/* eslint-disable @typescript-eslint/no-explicit-any -- mutations poke at the rendered object */
type Json = Record<string, any>;

const render = (name: string, props: VirtualMachineProps) => renderVirtualMachine(name, props) as Json;
const withDataVolume: VirtualMachineProps = {
  ...EXAMPLES.db,
  volumes: [{ name: 'root', dataVolume: { volumeName: 'db-root' } }, EXAMPLES.db.volumes![1]!],
};

/** Per field: the VM it is changed on, where the change lands (the path with `[*]` made concrete), the change. */
const CHANGES: Record<(typeof VM_IMMUTABLE_FIELDS)[number], [Json, string, (vm: Json) => void]> = {
  'spec.instance.cpu': [render('kb', EXAMPLES['kernel-boot']!), 'spec.instance.cpu', (vm) => (vm.spec.instance.cpu.sockets = 2)],
  'spec.instance.memory': [render('kb', EXAMPLES['kernel-boot']!), 'spec.instance.memory', (vm) => (vm.spec.instance.memory.size = '1Gi')],
  'spec.instance.kernel': [render('kb', EXAMPLES['kernel-boot']!), 'spec.instance.kernel', (vm) => (vm.spec.instance.kernel.cmdline += ' quiet')],
  'spec.instance.interfaces': [render('kb', EXAMPLES['kernel-boot']!), 'spec.instance.interfaces', (vm) => (vm.spec.instance.interfaces[0].mac = '52:54:00:00:00:01')],
  'spec.networks': [render('kb', EXAMPLES['kernel-boot']!), 'spec.networks', (vm) => (vm.spec.networks[0] = { name: 'pod', multus: { networkName: 'lan' } })],
  'spec.volumes[*].containerDisk': [render('web', EXAMPLES.web!), 'spec.volumes[0].containerDisk', (vm) => (vm.spec.volumes[0].containerDisk.image += '-2')],
  'spec.volumes[*].containerRootfs': [render('kb', EXAMPLES['kernel-boot']!), 'spec.volumes[0].containerRootfs', (vm) => (vm.spec.volumes[0].containerRootfs.image += '-2')],
  'spec.volumes[*].cloudInit': [render('web', EXAMPLES.web!), 'spec.volumes[1].cloudInit', (vm) => (vm.spec.volumes[1].cloudInit.userData += '#\n')],
  'spec.volumes[*].persistentVolumeClaim': [render('db', EXAMPLES.db!), 'spec.volumes[0].persistentVolumeClaim', (vm) => (vm.spec.volumes[0].persistentVolumeClaim.claimName = 'other')],
  'spec.volumes[*].dataVolume': [render('db', withDataVolume), 'spec.volumes[0].dataVolume', (vm) => (vm.spec.volumes[0].dataVolume.volumeName = 'other')],
}; // prettier-ignore

/** The errors only the old object causes: those of the transition rules. */
const transitionErrors = (vm: Json, old: Json) => {
  const alone = new Set(validateObject(vm as KubevisorObject).map(formatFieldError));
  return validateObject(vm as KubevisorObject, old as KubevisorObject).filter((e) => !alone.has(formatFieldError(e)));
};

test.each(VM_IMMUTABLE_FIELDS.map((f) => [f]))('a change to %s is refused by a transition rule', (field) => {
  const [old, at, change] = CHANGES[field];
  expect(validateObject(old as KubevisorObject).map(formatFieldError)).toEqual([]);
  const changed = structuredClone(old);
  change(changed);
  const errors = transitionErrors(changed, old);
  // At the field, or above it (cpu and memory share one rule on spec.instance; volumes' rules sit on spec.volumes).
  const where = errors.map((e) => ({
    field: e.field,
    above: at === e.field || at.startsWith(`${e.field}.`) || at.startsWith(`${e.field}[`),
  }));
  expect({ refused: errors.length > 0, where: where.filter((w) => !w.above) }).toEqual({ refused: true, where: [] });
});

test('a change elsewhere is refused by no transition rule', () => {
  const old = render('kb', EXAMPLES['kernel-boot']!);
  const changed = structuredClone(old);
  changed.spec.runPolicy = 'Halted';
  changed.spec.nodeSelector = { pool: 'vms' };
  expect(transitionErrors(changed, old).map(formatFieldError)).toEqual([]);
});
