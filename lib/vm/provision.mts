// The part of vm-manager's create sequence inside the guest: only what the
// host record says is not done yet (start, agent, cloud-init, NFS mounts,
// snapshots, features in order), and for a template its cleaning, shutdown
// and conversion.

import * as qm from '../pve/qm.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { debug, info } from '../core/log.mts';
import type { ResolvedScript } from '../core/bridge.mts';
import { guestScript, mountArgs, MOUNT_SCRIPT, TEMPLATE_CLEANUP_SCRIPT, waitForAgent, waitForCloudInit } from '../guest/vm-agent.mts';
import { digest } from './cloud-init.mts';
import { readRecord, uuidOf, writeRecord, type VmRecord } from './record.mts';
import { featureScriptName, FeatureRunner, GUEST_STAGING_DIR } from './features.mts';
import type { VmSpec } from './spec.mts';
import { featureRunContext, guestStep, timing, type VmSession, type VmView } from './session.mts';

/** How long a guest gets to shut down cleanly before Proxmox stops it. */
export const SHUTDOWN_TIMEOUT_S = 180;

/** What has to happen inside the guest, then doing it. */
export async function guestPhase(session: VmSession, spec: VmSpec, view: VmView, scripts: Map<string, ResolvedScript>, created: boolean, changes: string[]): Promise<void> {
  const { vmid } = spec;
  const record: VmRecord = view.virtual ? { vmid, uuid: '', features: [] } : readRecord(session.options.hostRoot, vmid, uuidOf(view.config));
  const mounts = spec.nfsVolumes.length > 0 ? mountArgs(spec.nfsVolumes.map((v) => ({ server: v.server, path: v.path, mountPoint: v.mount_point, options: v.options }))) : [];
  const mountsDigest = mounts.length > 0 ? digest(mounts.join('\0')) : undefined;
  const needMounts = mountsDigest !== undefined && record.mounts !== mountsDigest;
  const pendingFeatures = spec.features.filter((f) => !record.features.includes(f));

  const wantedSnapshots = [spec.preFeaturesSnapshot, spec.postFeaturesSnapshot, spec.finalSnapshot].filter((s): s is string => s !== undefined);
  const existingSnapshots = wantedSnapshots.length > 0 && !view.virtual ? await qm.listSnapshots(vmid) : [];
  const missing = (name: string | undefined): name is string => name !== undefined && !existingSnapshots.includes(name);
  const takePre = missing(spec.preFeaturesSnapshot) && record.features.length === 0;

  const needGuest = created || spec.isTemplate || needMounts || pendingFeatures.length > 0;
  if (!needGuest) {
    debug(`VM ${vmid}: mounts and features are done (${record.features.join(', ') || 'no features'})`);
    await takeSnapshots(vmid, [spec.postFeaturesSnapshot, spec.finalSnapshot].filter(missing), changes);
    return;
  }

  const t = timing(session.options);
  const reachable = !isDryRun() || view.running;
  if (!view.running) {
    info(`Starting VM ${vmid}...`);
    await qm.start(vmid);
    changes.push('started');
  }
  if (reachable) {
    await guestStep(`the guest agent of VM ${vmid}`, () => waitForAgent(vmid, t));
    await guestStep(`cloud-init in VM ${vmid}`, () => waitForCloudInit(vmid, t));
  } else {
    info(`DRY-RUN: would wait for the guest agent and for cloud-init in VM ${vmid}`);
  }

  if (needMounts) {
    info(`VM ${vmid}: mounting ${spec.nfsVolumes.map((v) => `${v.server}:${v.path} on ${v.mount_point}`).join(', ')}`);
    await guestStep(`mounting the NFS volumes of VM ${vmid}`, () => guestScript(vmid, MOUNT_SCRIPT, mounts, { timing: t }));
    changes.push('NFS volumes mounted');
    record.mounts = mountsDigest;
    saveRecord(session, record);
  }

  if (takePre) await takeSnapshots(vmid, [spec.preFeaturesSnapshot as string], changes);

  if (pendingFeatures.length > 0) {
    const runner = new FeatureRunner(featureRunContext(session, spec, t, reachable), scripts);
    info(`VM ${vmid}: features to apply: ${pendingFeatures.join(', ')}${record.features.length > 0 ? ` (done before: ${record.features.join(', ')})` : ''}`);
    for (const feature of pendingFeatures) {
      await guestStep(`feature ${feature} for VM ${vmid}`, () => runner.run(featureScriptName(feature), `feature ${feature}`));
      record.features.push(feature);
      saveRecord(session, record);
      changes.push(`feature ${feature}`);
    }
  }

  await takeSnapshots(vmid, [spec.postFeaturesSnapshot, spec.finalSnapshot].filter(missing), changes);

  if (spec.isTemplate) await convertToTemplate(session, vmid, reachable, changes);
}

function saveRecord(session: VmSession, record: VmRecord): void {
  if (isDryRun() || record.uuid === '') return;
  writeRecord(session.options.hostRoot, record);
}

async function takeSnapshots(vmid: string, names: readonly string[], changes: string[]): Promise<void> {
  for (const name of [...new Set(names)]) {
    info(`VM ${vmid}: taking snapshot '${name}'`);
    await qm.snapshot(vmid, name);
    changes.push(`snapshot ${name}`);
  }
}

/** Clean the guest so clones boot as new machines, shut it down (not a hard stop), convert. */
async function convertToTemplate(session: VmSession, vmid: string, reachable: boolean, changes: string[]): Promise<void> {
  const t = timing(session.options);
  info(`VM ${vmid}: cleaning cloud-init state and machine identity before templating`);
  await guestStep(`cleaning VM ${vmid} for templating`, () => guestScript(vmid, TEMPLATE_CLEANUP_SCRIPT, [GUEST_STAGING_DIR], { timing: t }));
  await shutdown(vmid);
  if (reachable && (await qm.status(vmid)) === 'running') throw new PhoenixError(`VM ${vmid} is still running after its shutdown; not converting it to a template`);
  info(`Converting VM ${vmid} to a template...`);
  await qm.template(vmid);
  changes.push('converted to a template');
  const assumed = session.assumed.get(vmid);
  if (assumed) assumed.template = true;
}

/** Ask the guest to shut down; Proxmox stops it if it has not after the time-out. */
export function shutdown(vmid: string) {
  info(`Shutting down VM ${vmid} (up to ${SHUTDOWN_TIMEOUT_S} s, then stopped)...`);
  return qm.shutdown(vmid, SHUTDOWN_TIMEOUT_S, { forceStop: true }, { timeoutMs: (SHUTDOWN_TIMEOUT_S + 60) * 1000 });
}
