/**
 * The KubevisorMachine lifecycle as a pure function (Cluster API infrastructure contract v1beta2): from the object,
 * its owner Machine, the Cluster and the VM of the machine's name to the status it should have and the actions that
 * get it there.
 *
 * Paused (Cluster spec.paused, or the cluster.x-k8s.io/paused annotation) → only the Paused condition. Deleted → the
 * VM is deleted, and the finalizer goes once the VM is gone. Otherwise: wait for the owner Machine (its UID, naming
 * this object back in spec.infrastructureRef) → finalizer → wait for the Cluster's infrastructure and the Machine's
 * bootstrap data (a Cluster API Secret of the machine's cluster) → create the VM (the machine's template plus a
 * cloud-init disk that references the bootstrap Secret) → providerID kubevisor://<VM UID>, addresses, node →
 * status.initialization.provisioned once the VM runs. A VM that stops for good (runPolicy Once), is deleted or replaced
 * makes the machine terminal (Ready False, VirtualMachineTerminated): the machine is never rebuilt in place, Cluster
 * API's remediation replaces it.
 */
import type { KubevisorMachineStatus, KubevisorObject, MachineAddress, VirtualMachineSpec } from '../../api';
import {
  API_VERSION,
  BOOTSTRAP_VOLUME,
  CLUSTER_API_SECRET_TYPE,
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  DEPLOYMENT_NAME_LABEL,
  INFRASTRUCTURE_API_VERSION,
  PROVIDER_ID_SCHEME,
  formatFieldError,
  validateObject,
} from '../../api';
import type {
  CapiClusterView,
  CapiMachineView,
  KubevisorMachineObject,
  MachineVmView,
  SecretView,
} from './kubevisor-cluster-api';
import { capiOwner, controllerUid, hasFinalizer, ownerMismatch, pausedBy, readyOf } from './kubevisor-cluster-api';
import { setCondition } from './vm-lifecycle';

export const KUBEVISOR_MACHINE_FINALIZER = 'kubevisormachine.infrastructure.cluster.x-k8s.io';

/**
 * The provider ID of the machine whose VM has this UID. The guest's kubelet reports the same: the VM's cloud-init
 * meta-data instance-id is its UID, so a kubelet flag `provider-id: kubevisor://{{ ds.meta_data.instance_id }}` matches.
 */
export const providerIdOf = (vmUid: string) => `${PROVIDER_ID_SCHEME}${vmUid}`;

/** Reasons of the Ready condition (Cluster API mirrors it into the Machine's InfrastructureReady). */
export const MachineReason = {
  WaitingForMachine: 'WaitingForMachine',
  /** The owner reference's Machine is another object (UID), or does not name this KubevisorMachine back. */
  OwnerMismatch: 'OwnerMismatch',
  /** The KubevisorMachine's cluster-name label names another cluster than its Machine's spec.clusterName. */
  ClusterNameMismatch: 'ClusterNameMismatch',
  /** The bootstrap Secret is missing, not of Cluster API's type, or of another cluster. */
  BootstrapDataInvalid: 'BootstrapDataInvalid',
  WaitingForClusterInfrastructure: 'WaitingForClusterInfrastructure',
  WaitingForBootstrapData: 'WaitingForBootstrapData',
  InvalidVirtualMachine: 'InvalidVirtualMachine',
  VirtualMachineConflict: 'VirtualMachineConflict',
  WaitingForVirtualMachine: 'WaitingForVirtualMachine',
  VirtualMachineReady: 'VirtualMachineReady',
  VirtualMachineNotReady: 'VirtualMachineNotReady',
  VirtualMachinePaused: 'VirtualMachinePaused',
  VirtualMachineRestarting: 'VirtualMachineRestarting',
  VirtualMachineStopped: 'VirtualMachineStopped',
  VirtualMachineTerminated: 'VirtualMachineTerminated',
  Deleting: 'Deleting',
} as const;

export type KubevisorMachineAction =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  | { type: 'createVm'; vm: KubevisorObject }
  | { type: 'deleteVm'; name: string; uid: string }
  | { type: 'setProviderID'; providerID: string }
  | { type: 'event'; reason: string; message: string; warning: boolean };

export interface KubevisorMachineDecision {
  /** The status to write; undefined when the object goes away in this pass. */
  status?: KubevisorMachineStatus;
  actions: KubevisorMachineAction[];
  /**
   * The VM is about to be made and the bootstrap Secret was not read: decide again with
   * {@link KubevisorMachineInput.bootstrapSecret}. No action of this decision may be taken.
   */
  needsBootstrapSecret?: true;
  /** Look again after this long (a bootstrap Secret that may yet be fixed; nothing watches Secrets). */
  requeueAfterMs?: number;
}

/** How soon a machine whose bootstrap Secret is not usable looks again. */
export const BOOTSTRAP_RECHECK_MS = 30_000;

export interface KubevisorMachineInput {
  readonly km: KubevisorMachineObject;
  /** The Machine the owner reference names, if cached. */
  readonly machine: CapiMachineView | undefined;
  /** The machine's Cluster ({@link clusterNameOf}), if cached. */
  readonly cluster: CapiClusterView | undefined;
  /** The VM of the machine's name, whoever made it. */
  readonly vm: MachineVmView | undefined;
  /**
   * The Secret the Machine names as its bootstrap data, read from the API server: null when absent, undefined when not
   * read (then a decision that would create the VM asks for it, {@link KubevisorMachineDecision.needsBootstrapSecret}).
   */
  readonly bootstrapSecret?: SecretView | null;
  readonly now: Date;
}

/**
 * The machine's cluster: its Machine's spec.clusterName (the Machine is checked to own this object). The
 * KubevisorMachine's own cluster-name label is anyone's to write; a label naming another cluster is refused.
 */
export function clusterNameOf(_km: KubevisorMachineObject, machine: CapiMachineView | undefined): string | undefined {
  return machine?.spec?.clusterName || undefined;
}

/** Why the bootstrap Secret may not be handed to the VM, or undefined when it may. */
export function bootstrapSecretProblem(
  secret: SecretView | null,
  name: string,
  clusterName: string,
): string | undefined {
  if (!secret) return `bootstrap data Secret ${name} not found`;
  if (secret.type !== CLUSTER_API_SECRET_TYPE) {
    return `bootstrap data Secret ${name} has type ${secret.type ?? 'Opaque'}, not ${CLUSTER_API_SECRET_TYPE} (Cluster API's)`;
  }
  const label = secret.metadata.labels?.[CLUSTER_NAME_LABEL];
  if (label !== clusterName) {
    return `bootstrap data Secret ${name} is not of cluster ${clusterName} (label ${CLUSTER_NAME_LABEL}: ${label ?? 'none'})`;
  }
  return undefined;
}

/**
 * The machine's VirtualMachine: named after it, the template's spec plus a cloud-init disk and volume
 * {@link BOOTSTRAP_VOLUME} that name the bootstrap Secret (the VM pod mounts its key `value`; nothing secret is copied
 * into the VM), controlled by the machine. Cluster API's labels come from the Machine, never from the template: the
 * control-plane Service selects VM pods by them.
 */
export function machineVm(
  km: KubevisorMachineObject,
  machine: CapiMachineView,
  clusterName: string,
  dataSecretName: string,
): KubevisorObject & { spec: VirtualMachineSpec } {
  const template = km.spec.virtualMachine;
  const spec = template.spec;
  const machineLabels = machine.metadata.labels ?? {};
  const labels: Record<string, string> = { ...template.metadata?.labels };
  for (const key of [CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, DEPLOYMENT_NAME_LABEL]) delete labels[key];
  labels[CLUSTER_NAME_LABEL] = clusterName;
  if (machineLabels[CONTROL_PLANE_LABEL] !== undefined) labels[CONTROL_PLANE_LABEL] = '';
  if (machineLabels[DEPLOYMENT_NAME_LABEL]) labels[DEPLOYMENT_NAME_LABEL] = machineLabels[DEPLOYMENT_NAME_LABEL];
  const annotations = template.metadata?.annotations;
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualMachine',
    metadata: {
      name: km.metadata.name,
      ...(km.metadata.namespace ? { namespace: km.metadata.namespace } : {}),
      labels,
      ...(annotations && Object.keys(annotations).length ? { annotations: { ...annotations } } : {}),
      ownerReferences: [
        {
          apiVersion: INFRASTRUCTURE_API_VERSION,
          kind: 'KubevisorMachine',
          name: km.metadata.name,
          uid: km.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...spec,
      instance: {
        ...spec.instance,
        // Last: disks are in boot order, and the template's root disk stays first.
        disks: [...(spec.instance.disks ?? []), { name: BOOTSTRAP_VOLUME }],
      },
      volumes: [...(spec.volumes ?? []), { name: BOOTSTRAP_VOLUME, cloudInit: { userDataSecretName: dataSecretName } }],
    },
  };
}

/** Hostname (the VM's name, the guest's host name) and every guest IP; the last known IPs while the guest reports none. */
export function machineAddresses(vm: MachineVmView, previous: readonly MachineAddress[] | undefined): MachineAddress[] {
  const ips = [...new Set((vm.status?.interfaces ?? []).flatMap((i) => i.ipAddresses ?? []))];
  const internal: MachineAddress[] = ips.length
    ? ips.map((address) => ({ type: 'InternalIP', address }))
    : (previous ?? []).filter((a) => a.type === 'InternalIP');
  // The CRD holds 32 addresses.
  return [{ type: 'Hostname' as const, address: vm.metadata.name }, ...internal].slice(0, 32);
}

export function decideKubevisorMachine(input: KubevisorMachineInput): KubevisorMachineDecision {
  const { km, machine, cluster, vm, bootstrapSecret, now } = input;
  const meta = km.metadata;
  const old = km.status ?? {};
  const status: KubevisorMachineStatus = JSON.parse(JSON.stringify(old)) as KubevisorMachineStatus;
  const actions: KubevisorMachineAction[] = [];
  const generation = meta.generation;
  const condition = (type: string, s: 'True' | 'False', reason: string, message: string) =>
    (status.conditions = setCondition(status.conditions, type, s, reason, message, now, generation));
  const ready = (s: 'True' | 'False', reason: string, message: string) => condition('Ready', s, reason, message);
  const oldReady = readyOf(old.conditions);
  const terminal = (message: string) => {
    if (oldReady?.reason !== MachineReason.VirtualMachineTerminated) {
      actions.push({ type: 'event', reason: MachineReason.VirtualMachineTerminated, message, warning: true });
    }
    ready('False', MachineReason.VirtualMachineTerminated, message);
    return { status, actions };
  };

  const paused = pausedBy(meta, cluster, 'KubevisorMachine');
  if (paused) {
    // Nothing else, deletion included: clusterctl move pauses a cluster while it copies and deletes its objects.
    condition('Paused', 'True', 'Paused', paused);
    return { status, actions };
  }
  condition('Paused', 'False', 'NotPaused', 'reconciling');

  const ours = vm !== undefined && controllerUid(vm.metadata) === meta.uid;
  const vmName = meta.name;
  if (meta.deletionTimestamp) {
    // Deletion waits for neither the Cluster nor the bootstrap data: only for the VM to be gone.
    if (!hasFinalizer(meta, KUBEVISOR_MACHINE_FINALIZER)) return { actions };
    if (!ours) {
      actions.push({ type: 'removeFinalizer' });
      return { actions };
    }
    if (!vm.metadata.deletionTimestamp) {
      actions.push({ type: 'deleteVm', name: vmName, uid: vm.metadata.uid });
      actions.push({
        type: 'event',
        reason: 'VirtualMachineDeleted',
        message: `deleting VirtualMachine ${vmName}`,
        warning: false,
      });
    }
    ready('False', MachineReason.Deleting, `waiting for VirtualMachine ${vmName} to be deleted`);
    return { status, actions };
  }

  const owner = capiOwner(meta, 'Machine');
  if (!owner || !machine) {
    const message = owner ? `waiting for Machine ${owner.name}` : 'waiting for Cluster API to set the owner Machine';
    ready('False', MachineReason.WaitingForMachine, message);
    return { status, actions };
  }
  const mismatch = ownerMismatch(owner, machine, { kind: 'KubevisorMachine', name: meta.name });
  if (mismatch) {
    ready('False', MachineReason.OwnerMismatch, `${mismatch}; waiting for Cluster API to set the owner`);
    return { status, actions };
  }
  const clusterName = clusterNameOf(km, machine);
  const labelled = meta.labels?.[CLUSTER_NAME_LABEL];
  if (labelled !== undefined && labelled !== clusterName) {
    ready(
      'False',
      MachineReason.ClusterNameMismatch,
      `the label ${CLUSTER_NAME_LABEL} names cluster ${labelled}, but Machine ${machine.metadata.name} is of ` +
        `cluster ${clusterName ?? '(none)'} (spec.clusterName)`,
    );
    return { status, actions };
  }
  if (!hasFinalizer(meta, KUBEVISOR_MACHINE_FINALIZER)) actions.push({ type: 'addFinalizer' });
  // The VM stopped for good once: the node it was is gone (its bootstrap ran once), so it stays terminal whatever the
  // VM does next, until Cluster API replaces the machine.
  if (oldReady?.reason === MachineReason.VirtualMachineTerminated) return { status, actions };

  if (vm && !ours) {
    const message =
      `VirtualMachine ${vmName} already exists and is not controlled by this KubevisorMachine; it is not adopted: ` +
      'delete it, or delete this machine so Cluster API makes one with another name';
    if (oldReady?.reason !== MachineReason.VirtualMachineConflict) {
      actions.push({ type: 'event', reason: MachineReason.VirtualMachineConflict, message, warning: true });
    }
    ready('False', MachineReason.VirtualMachineConflict, message);
    return { status, actions };
  }

  if (!vm) {
    // It existed (its UID is the providerID, or it was observed): a VM made again would be another node.
    if (km.spec.providerID || old.vmName) {
      return terminal(`VirtualMachine ${vmName} was deleted; the machine is not rebuilt (Cluster API replaces it)`);
    }
    if (!clusterName || !cluster || !cluster.status?.initialization?.infrastructureProvisioned) {
      const which = clusterName ? `Cluster ${clusterName}` : 'the Cluster';
      ready(
        'False',
        MachineReason.WaitingForClusterInfrastructure,
        `waiting for the infrastructure of ${which} (status.initialization.infrastructureProvisioned)`,
      );
      return { status, actions };
    }
    const dataSecretName = machine.spec?.bootstrap?.dataSecretName;
    if (!dataSecretName) {
      ready(
        'False',
        MachineReason.WaitingForBootstrapData,
        `waiting for the bootstrap data of Machine ${machine.metadata.name} (spec.bootstrap.dataSecretName)`,
      );
      return { status, actions };
    }
    // Only a Secret Cluster API wrote for this cluster: the VM pod mounts whatever Secret the Machine names.
    if (bootstrapSecret === undefined) return { status, actions, needsBootstrapSecret: true };
    const problem = bootstrapSecretProblem(bootstrapSecret, dataSecretName, clusterName);
    if (problem) {
      if (oldReady?.reason !== MachineReason.BootstrapDataInvalid || oldReady.message !== problem) {
        actions.push({ type: 'event', reason: MachineReason.BootstrapDataInvalid, message: problem, warning: true });
      }
      ready('False', MachineReason.BootstrapDataInvalid, problem);
      return { status, actions, requeueAfterMs: BOOTSTRAP_RECHECK_MS };
    }
    const desired = machineVm(km, machine, clusterName, dataSecretName);
    const errors = validateObject(desired);
    if (errors.length) {
      const message = `the VirtualMachine this machine makes is invalid: ${errors.map(formatFieldError).join('; ')}`;
      if (oldReady?.reason !== MachineReason.InvalidVirtualMachine || oldReady.message !== message) {
        actions.push({ type: 'event', reason: MachineReason.InvalidVirtualMachine, message, warning: true });
      }
      ready('False', MachineReason.InvalidVirtualMachine, message);
      return { status, actions };
    }
    actions.push({ type: 'createVm', vm: desired });
    ready('False', MachineReason.WaitingForVirtualMachine, `creating VirtualMachine ${vmName}`);
    return { status, actions };
  }

  // The VM is this machine's.
  const providerID = providerIdOf(vm.metadata.uid);
  if (km.spec.providerID && km.spec.providerID !== providerID) {
    return terminal(
      `VirtualMachine ${vmName} was replaced: the machine's providerID ${km.spec.providerID} names the one before`,
    );
  }
  if (vm.metadata.deletionTimestamp) return terminal(`VirtualMachine ${vmName} is being deleted`);
  if (!km.spec.providerID) actions.push({ type: 'setProviderID', providerID });
  status.vmName = vmName;
  if (vm.status?.nodeName) status.nodeName = vm.status.nodeName;
  else delete status.nodeName;
  status.addresses = machineAddresses(vm, old.addresses);

  const phase = vm.status?.phase;
  const vmReady = readyOf(vm.status?.conditions);
  const said = vmReady?.message ? `: ${vmReady.message}` : '';
  switch (phase) {
    case 'Running':
      // Provisioned stays true from here on (the contract's "initial provisioning done").
      status.initialization = { ...status.initialization, provisioned: true };
      if (vmReady?.status === 'True') {
        ready('True', MachineReason.VirtualMachineReady, `VirtualMachine ${vmName} runs on ${vm.status?.nodeName}`);
      } else {
        ready('False', MachineReason.VirtualMachineNotReady, `VirtualMachine ${vmName} runs, not ready${said}`);
      }
      break;
    case 'Paused':
      ready('False', MachineReason.VirtualMachinePaused, `VirtualMachine ${vmName} is paused (spec.power.paused)`);
      break;
    case 'Failed':
    case 'Succeeded': {
      const runPolicy = vm.spec?.runPolicy ?? km.spec.virtualMachine.spec.runPolicy ?? 'Once';
      const restarts = runPolicy === 'Always' || (runPolicy === 'RerunOnFailure' && phase === 'Failed');
      if (!restarts) return terminal(`VirtualMachine ${vmName} ended (${phase}, runPolicy ${runPolicy})${said}`);
      ready('False', MachineReason.VirtualMachineRestarting, `VirtualMachine ${vmName} ${phase}, restarting${said}`);
      break;
    }
    case 'Stopped':
      ready('False', MachineReason.VirtualMachineStopped, `VirtualMachine ${vmName} is stopped${said}`);
      break;
    case 'Unknown':
      ready('False', MachineReason.VirtualMachineNotReady, `VirtualMachine ${vmName} is in an unknown state${said}`);
      break;
    default:
      // Pending, Scheduling, Scheduled, or not yet seen by its reconciler: the VM's own words say what it waits for.
      ready(
        'False',
        MachineReason.WaitingForVirtualMachine,
        vmReady?.message || `VirtualMachine ${vmName} is ${phase ?? 'being created'}`,
      );
  }
  if (!km.spec.providerID) {
    actions.push({ type: 'event', reason: 'ProviderIDSet', message: `providerID ${providerID}`, warning: false });
  }
  return { status, actions };
}
