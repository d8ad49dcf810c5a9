// vm-manager's verbs other than create: start, stop, restart, delete and
// status are the guest verbs of lib/guest/lifecycle.mts; this module says
// what is a VM's own: it is asked to shut down (and stopped by Proxmox after
// a time-out) rather than stopped at once, it is destroyed with --purge, and
// deleting one also removes its record and its cloud-init snippets while its
// host data is kept. sync refreshes the Docker TLS material of a docker VM.

import path from 'node:path';
import * as qm from '../pve/qm.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, success, warn } from '../core/log.mts';
import { removeFile } from '../core/fs.mts';
import { withGuestLock } from '../guest/manager.mts';
import { type LifecycleKind, type Removal, deleteGuest, guestStatusTable, restartGuest, startGuest, stopGuest } from '../guest/lifecycle.mts';
import { PARTS, snippetName } from './cloud-init.mts';
import { findSnippetStore } from './storage.mts';
import { removeRecord } from './record.mts';
import { FeatureRunner, resolveVmScripts } from './features.mts';
import { featureRunContext, guestStep, inspectVm, specFor, timing, type VmSession } from './session.mts';
import { shutdown } from './provision.mts';

export const SYNC_CERTS_SCRIPT = 'vm_features/feature_sync_docker_certs.sh';
export const SYNC_PROXY_SCRIPT = 'vm_features/feature_sync_docker_proxy.sh';

const VMS: LifecycleKind<VmSession> = {
  subject: (vmid) => `VM ${vmid}`,
  starting: (vmid) => `Starting VM ${vmid}...`,
  // vm-manager checks every VMID against the manifest before it starts.
  requireEntry: () => undefined,
  inspect: inspectVm,
  missing: (vmid) => `VM ${vmid} does not exist (create it first: vm-manager.sh create ${vmid})`,
  templateNote: {
    start: (vmid) => ['info', `VM ${vmid} is a template; templates are never started.`],
    stop: (vmid) => ['info', `VM ${vmid} is a template; it never runs.`],
    restart: (vmid) => ['info', `VM ${vmid} is a template; templates are never started.`],
  },
  announceRestart: true,
  start: async (_session, vmid) => void (await qm.start(vmid)),
  async stop(_session, vmid, verb) {
    // The bash's stop was fatal (exit 1) when qm failed; before a restart, qm's own status is kept.
    if (verb === 'stop') await guestStep(`stopping VM ${vmid}`, () => shutdown(vmid));
    else await shutdown(vmid);
  },
};

const VM_REMOVAL: Removal<VmSession> = {
  absent: (vmid) => `VM ${vmid} does not exist; nothing to delete.`,
  cleanUpAbsent: false,
  async stop(_session, vmid) {
    info(`Stopping VM ${vmid}...`);
    const stopped = await qm.stop(vmid, { allowFailure: true });
    if (stopped.code !== 0) warn(`qm stop ${vmid} failed (exit ${stopped.code}); trying to destroy it anyway`);
  },
  async destroy(_session, vmid) {
    info(`Destroying VM ${vmid} (with --purge: backup jobs, replication and HA entries go too)...`);
    await guestStep(`destroying VM ${vmid}`, () => qm.destroy(vmid, { purge: true }));
  },
  async cleanUp(session, vmid) {
    removeRecord(session.options.hostRoot, vmid);
    const store = await findSnippetStore(session.config.hypervisor, snippetName(vmid, 'user'));
    if (store) for (const part of PARTS) removeFile(path.join(session.options.hostRoot, store.dir, snippetName(vmid, part)));
    const entry = session.config.vm.vms.find((vm) => String(vm.vmid) === vmid);
    const kept = (entry?.volumes ?? []).map((v) => v.path);
    if (kept.length > 0) info(`Host data of VM ${vmid} is kept: ${kept.join(', ')}`);
  },
  done: (vmid) => `VM ${vmid} deleted.`,
};

export const startVm = (session: VmSession, vmid: string): Promise<void> => startGuest(session, VMS, vmid);
export const stopVm = (session: VmSession, vmid: string): Promise<void> => stopGuest(session, VMS, vmid);
export const restartVm = (session: VmSession, vmid: string): Promise<void> => restartGuest(session, VMS, vmid);

export async function deleteVm(session: VmSession, vmid: string): Promise<void> {
  await deleteGuest(session, VMS, vmid, VM_REMOVAL);
}

/**
 * Refresh the Docker TLS material of a VM that runs the docker feature:
 * the certificate sync on the host, then the proxy sync, which is guest
 * code and runs in the VM when it is a bash copy (the bash ran it on the
 * host, for VM 1001 only).
 */
export async function syncVm(session: VmSession, vmid: string): Promise<void> {
  const spec = specFor(session, vmid);
  if (!spec.features.includes('docker')) {
    info(`VM ${vmid} has no docker feature; nothing to sync.`);
    return;
  }
  const scripts = resolveVmScripts([SYNC_CERTS_SCRIPT, SYNC_PROXY_SCRIPT], session.options);
  // Only the proxy sync is guest code: only it is staged into the VM.
  const inGuest = new Map([...scripts].filter(([name]) => name === SYNC_PROXY_SCRIPT));
  await withGuestLock(session, vmid, async () => {
    const view = await inspectVm(session, vmid);
    if (!view.exists) throw new PhoenixError(VMS.missing(vmid));
    if (!view.running && !isDryRun()) throw new PhoenixError(`VM ${vmid} is not running; start it before a sync`);
    const runner = new FeatureRunner(featureRunContext(session, spec, timing(session.options), view.running), inGuest);
    // The bash certificate sync is host code (it ran the renewal manager);
    // the bash proxy sync is guest code, which the bash ran on the host.
    await guestStep(`Docker certificate sync for VM ${vmid}`, () => runner.run(SYNC_CERTS_SCRIPT, 'Docker certificate sync', 'host'));
    await guestStep(`Docker proxy sync for VM ${vmid}`, () => runner.run(SYNC_PROXY_SCRIPT, 'Docker proxy sync'));
    success(`VM ${vmid} synced.`);
  });
}

/** `status`: the same table `phoenix status` prints, on stdout. */
export function statusTable(session: VmSession, ids: readonly string[]): Promise<string> {
  return guestStatusTable(session.config, 'vm', ids);
}
