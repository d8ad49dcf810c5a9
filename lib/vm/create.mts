// vm-manager's create (and converge, which the CLI sends for every guest of
// a chain): the bash's create sequence, made idempotent:
//   1. host directories of the NFS volumes; the certificate run (once);
//   2. under the VM's own lock: define the VM (clone --full, or qm create
//      importing the cloud image) unless it exists; a finished template is
//      left alone (Proxmox refuses to start one);
//   3. cloud-init files as snippets; every qm option the manifest owns, set
//      only where it differs (one qm set); the boot disk grown to
//      disk_size_gb;
//   4. inside the guest (provision.mts), only what the host record says is
//      not done yet: start, agent, cloud-init, NFS mounts, snapshots,
//      features in order;
//   5. a template is cleaned, shut down and converted.
// A second create of an unchanged VM issues no mutating command and says so.

import path from 'node:path';
import fs from 'node:fs';
import * as qm from '../pve/qm.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, success, warn } from '../core/log.mts';
import { ensureDir, writeFileAtomic } from '../core/fs.mts';
import { CERTIFICATE_SCRIPT, SIBLING_WAIT_S, certificateManagerFound, hostStep, runChild, withGuestLock } from '../guest/manager.mts';
import { finishSnapshotTask, isHalfMade, isSnapshotTaskUnfinished, removeHalfMadeGuest } from '../pve/half-made.mts';
import { applyGuestFirewall } from '../firewall/apply.mts';
import { certificateEntriesFor, type VmSpec } from './spec.mts';
import { createFromImageOptions, desiredOptions, diffAsOptions, diffOptions, isEmptyDiff, macOf, resizePlan, CLOUD_INIT_KEYS } from './options.mts';
import { cicustomValue, PARTS, partContent, renderCloudInit, snippetName } from './cloud-init.mts';
import { findCloudImage, findSnippetStore } from './storage.mts';
import { readRecord, removeRecord, uuidOf } from './record.mts';
import { featureScriptName, resolveVmScripts } from './features.mts';
import { ABSENT, guestStep, inspectVm, specFor, type VmSession, type VmView } from './session.mts';
import { guestPhase } from './provision.mts';

export async function createVm(session: VmSession, vmid: string, waitSeconds = session.options.lockWaitSeconds): Promise<string[]> {
  const spec = specFor(session, vmid);
  for (const note of spec.notes) info(`VM ${vmid}: ${note}`);
  // Every script the sequence may need is found before anything changes.
  const scripts = resolveVmScripts(spec.features.map(featureScriptName), session.options);
  const changes: string[] = [];
  ensureHostDirs(session, spec, changes);
  await certificateRun(session, vmid);
  const matches = await withGuestLock(
    session,
    vmid,
    async () => {
      info(`Starting create workflow for VM ${vmid} (${spec.name})...`);
      return createLocked(session, spec, scripts, changes);
    },
    waitSeconds,
  );
  if (changes.length === 0) success(`VM ${vmid} (${spec.name}) is unchanged${matches ? ': it already matches the manifest' : ''}.`);
  else if (isDryRun()) info(`VM ${vmid}: dry run, nothing was changed; planned: ${changes.join('; ')}`);
  else success(`VM ${vmid} (${spec.name}) is ready: ${changes.join('; ')}.`);
  return changes;
}

/** Returns false when the VM is left differing from the manifest (a finished template). */
async function createLocked(session: VmSession, spec: VmSpec, scripts: ReturnType<typeof resolveVmScripts>, changes: string[]): Promise<boolean> {
  const { vmid } = spec;
  let view = await inspectVm(session, vmid);
  if (view.exists && !view.virtual && isHalfMade('qm', view.config.lock)) {
    await guestStep(`removing the half-made VM ${vmid}`, () => removeHalfMadeGuest('qm', vmid, view.config.lock as string));
    removeRecord(session.options.hostRoot, vmid);
    changes.push('removed a half-made VM');
    view = ABSENT;
  }
  if (view.exists && !view.virtual && isSnapshotTaskUnfinished(view.config.lock)) {
    const removed = await guestStep(`finishing the interrupted snapshot task of VM ${vmid}`, () => finishSnapshotTask('qm', vmid, view.config.lock as string));
    changes.push(...removed.map((name) => `removed the unfinished snapshot ${name}`));
    view = await inspectVm(session, vmid);
  }

  if (view.exists && view.template) {
    if (!spec.isTemplate) warn(`VM ${vmid} is a template, but the manifest does not say is_template`);
    // A template is finished work; re-running its pipeline would try to
    // start it, which Proxmox refuses.
    const drift = reportTemplateDrift(spec, view.config);
    info(`VM ${vmid} is already a template; left as it is.`);
    return !drift;
  }

  let created = false;
  if (!view.exists) {
    view = await defineVm(session, spec, changes);
    created = true;
  } else {
    await finishClone(session, spec, view, changes);
  }

  // ---- cloud-init files and qm options
  const snippets = await writeSnippets(session, spec, view, changes);
  const desired = desiredOptions(spec, { cicustom: snippets.cicustom, currentNet0: view.config.net0 });
  const diff = diffOptions(desired, view.config);
  if (!isEmptyDiff(diff)) {
    info(`VM ${vmid}: setting ${diff.changed.join(', ')}`);
    await qm.set(vmid, diffAsOptions(diff));
    changes.push(`set ${diff.changed.join(', ')}`);
    for (const [key, value] of Object.entries(diff.set)) view.config[key] = value;
    for (const key of diff.remove) delete view.config[key];
    if (view.running && diff.changed.some((k) => k === 'cores' || k === 'memory' || k === 'agent')) {
      warn(`VM ${vmid} is running: ${diff.changed.filter((k) => ['cores', 'memory', 'agent'].includes(k)).join(', ')} take effect at its next restart`);
    }
  }
  const cloudInitChanged = snippets.changed || diff.changed.some((k) => CLOUD_INIT_KEYS.has(k));
  if (view.running && cloudInitChanged) {
    await qm.cloudinitUpdate(vmid);
    warn(`VM ${vmid} is running: its new cloud-init settings apply at its next boot`);
    changes.push('regenerated the cloud-init drive');
  }

  const resize = resizePlan(spec, view.config);
  if (resize.action === 'grow') {
    info(`VM ${vmid}: growing ${resize.disk} to ${resize.size} (disk_size_gb)`);
    await qm.resize(vmid, resize.disk, resize.size);
    changes.push(`grew ${resize.disk} to ${resize.size}`);
  } else if (resize.action === 'larger') {
    warn(`VM ${vmid}: ${resize.disk} is ${resize.currentGb} GB, larger than disk_size_gb ${spec.diskGb}; Proxmox cannot shrink a disk, left as it is`);
  } else if (created && view.virtual && spec.diskGb !== undefined) {
    info(`DRY-RUN: would grow the boot disk of VM ${vmid} to ${spec.diskGb}G if it is smaller`);
  }

  await firewallStep(session, vmid, changes);
  await guestPhase(session, spec, view, scripts, created, changes);
  return true;
}

/**
 * The VM's own firewall file (and cluster.fw / host.fw when they differ),
 * in-process. lxc-manager regenerates the firewall after each container, but
 * those runs come before the VMs exist, so without this step a VM's rules
 * would wait for the next run.
 */
async function firewallStep(session: VmSession, vmid: string, changes: string[]): Promise<void> {
  await hostStep(session, 'firewall', async () => {
    const result = await applyGuestFirewall(session.config, vmid);
    if (result.changed) changes.push('firewall');
  });
}

/** Make the VM: a full clone of its source, or a new VM importing the cloud image. */
async function defineVm(session: VmSession, spec: VmSpec, changes: string[]): Promise<VmView> {
  const { vmid } = spec;
  info(`VM ${vmid} does not exist. Proceeding with creation...`);
  if (spec.cloneFrom !== undefined) return cloneVm(session, spec, spec.cloneFrom, changes);

  const image = await findCloudImage(spec.image as string, session.config.hypervisor);
  info(`VM ${vmid}: creating from cloud image ${image} on ${spec.storage}`);
  const options = createFromImageOptions(spec, image, undefined);
  await qm.create(vmid, options, { timeoutMs: session.options.guestTimeoutSeconds * 1000 });
  changes.push(`created from ${image}`);
  if (isDryRun()) {
    const assumed: VmView = { exists: true, config: stringValues(options), running: false, template: false, virtual: true };
    session.assumed.set(vmid, assumed);
    return assumed;
  }
  return inspectVm(session, vmid);
}

async function cloneVm(session: VmSession, spec: VmSpec, source: string, changes: string[]): Promise<VmView> {
  const { vmid } = spec;
  let sourceView = await inspectVm(session, source);
  const sourceEntry = session.config.vm.vms.find((vm) => String(vm.vmid) === source);
  // A source that is missing, or a template-to-be that a failed run left
  // unfinished, is brought to its manifest state first.
  if (!sourceView.exists || (sourceEntry?.is_template === true && !sourceView.template)) {
    if (!sourceEntry) throw new PhoenixError(`clone source ${source} of VM ${vmid} does not exist and is not in ${session.config.paths.vm}`);
    info(`Clone source ${source} is ${sourceView.exists ? 'not finished' : 'missing'}; creating it first.`);
    await createVm(session, source, session.siblings ? SIBLING_WAIT_S : session.options.lockWaitSeconds);
    sourceView = await inspectVm(session, source);
  }
  info(`VM ${vmid}: full clone of ${source} onto ${spec.storage}`);
  await qm.clone(source, vmid, { name: spec.name, full: true, storage: spec.storage }, { timeoutMs: session.options.guestTimeoutSeconds * 1000 });
  changes.push(`cloned from ${source}`);
  if (spec.cloneBaseSnapshot) {
    info(`VM ${vmid}: keeping the state of template ${source} as snapshot '${spec.cloneBaseSnapshot}' (its template_snapshot_name)`);
    await qm.snapshot(vmid, spec.cloneBaseSnapshot, `state of template ${source} when cloned`);
    changes.push(`snapshot ${spec.cloneBaseSnapshot}`);
  }
  if (isDryRun()) {
    const config: Record<string, string> = { ...sourceView.config, name: spec.name };
    delete config.template;
    // The clone gets a new MAC address; the source's would only mislead the plan.
    if (config.net0) config.net0 = config.net0.replace(/^(\w+)=[0-9A-Fa-f:]{17}/, '$1');
    const assumed: VmView = { exists: true, config, running: false, template: false, virtual: true };
    session.assumed.set(vmid, assumed);
    return assumed;
  }
  return inspectVm(session, vmid);
}

/** Options vm-manager sets that a clone takes unchanged from its source (name and net0's MAC are the clone's own). */
const CLONE_KEPT_KEYS = ['cores', 'memory', 'agent', 'onboot', 'startup', 'ipconfig0', 'nameserver', 'searchdomain', 'ciuser', 'cicustom'] as const;

/**
 * A run killed between `qm clone` and the snapshot that keeps the
 * template's state leaves a clone without it. The clone is still exactly
 * what `qm clone` made while nothing has been done to it since (no option
 * set, never started, nothing recorded), so the snapshot is taken now,
 * before anything changes it.
 */
async function finishClone(session: VmSession, spec: VmSpec, view: VmView, changes: string[]): Promise<void> {
  const name = spec.cloneBaseSnapshot;
  if (name === undefined || view.virtual || view.template) return;
  const snapshots = await qm.listSnapshots(spec.vmid);
  if (snapshots.includes(name)) return;
  const record = readRecord(session.options.hostRoot, spec.vmid, uuidOf(view.config));
  const source = spec.cloneFrom === undefined ? undefined : await inspectVm(session, spec.cloneFrom);
  // Every option vm-manager sets (the name apart, which the clone gets) is still the template's.
  const asCloned = source?.exists === true && CLONE_KEPT_KEYS.every((key) => view.config[key] === source.config[key]);
  const untouched = asCloned && !view.running && snapshots.length === 0 && record.features.length === 0 && record.mounts === undefined;
  if (!untouched) {
    warn(`VM ${spec.vmid} has no snapshot '${name}' and has changed since it was cloned from ${spec.cloneFrom ?? 'its template'}; not taking it now (it would not hold the template's state)`);
    return;
  }
  info(`VM ${spec.vmid}: the clone of ${spec.cloneFrom ?? 'its template'} was interrupted before its snapshot '${name}'; taking it now`);
  await qm.snapshot(spec.vmid, name, `state of template ${spec.cloneFrom ?? ''} when cloned`);
  changes.push(`snapshot ${name}`);
}

interface SnippetOutcome {
  cicustom: string | undefined;
  changed: boolean;
}

/** Render the cloud-init files and store them as snippets; without a snippets storage, Proxmox generates them. */
async function writeSnippets(session: VmSession, spec: VmSpec, view: VmView, changes: string[]): Promise<SnippetOutcome> {
  const store = await findSnippetStore(session.config.hypervisor, snippetName(spec.vmid, 'user'));
  if (!store) {
    if (!session.snippetWarned) {
      session.snippetWarned = true;
      warn(
        'no active storage holds snippets: cloud-init gets what Proxmox generates from ciuser, ipconfig0, nameserver and searchdomain, ' +
          'and the image must bring qemu-guest-agent itself. To use Phoenix\'s cloud-init files, enable snippets on a storage ' +
          '(e.g. pvesm set local --content backup,iso,vztmpl,snippets).',
      );
    }
    return { cicustom: undefined, changed: false };
  }
  const files = await renderCloudInit(spec, { mac: macOf(view.config.net0) });
  let changed = false;
  for (const part of PARTS) {
    const file = path.join(session.options.hostRoot, store.dir, snippetName(spec.vmid, part));
    const outcome = writeFileAtomic(file, partContent(files, part), { mode: 0o640 });
    if (outcome !== 'unchanged') {
      changed = true;
      changes.push(`${outcome === 'created' ? 'wrote' : 'updated'} cloud-init ${part} snippet`);
    }
  }
  return { cicustom: cicustomValue(store.storage, spec.vmid), changed };
}

/** A finished template is not changed, but the operator hears what differs. */
function reportTemplateDrift(spec: VmSpec, config: Record<string, string>): boolean {
  const diff = diffOptions(desiredOptions(spec, { cicustom: config.cicustom, currentNet0: config.net0 }), config);
  const differ = diff.changed.filter((k) => k !== 'cicustom');
  if (differ.length > 0) warn(`template ${spec.vmid} differs from the manifest in ${differ.join(', ')}; a template is not changed (delete and create it again to rebuild it)`);
  return differ.length > 0;
}

/** The host directories the VM's NFS volumes export; created when missing, never made world-writable. */
function ensureHostDirs(session: VmSession, spec: VmSpec, changes: string[]): void {
  for (const volume of spec.nfsVolumes) {
    const dir = path.join(session.options.hostRoot, volume.path);
    if (fs.existsSync(dir)) continue;
    if (!isDryRun()) info(`Creating host directory ${dir} for the NFS volume ${volume.name ?? volume.mount_point} of VM ${spec.vmid}`);
    ensureDir(dir, 0o755);
    changes.push(`created ${volume.path}`);
  }
}

/** certificate-renewal-manager --generate-only, once per run, when the certificate manifest names this VM. */
async function certificateRun(session: VmSession, vmid: string): Promise<void> {
  if (session.certificatesDone) return;
  if (!fs.existsSync(session.config.paths.certificates)) return;
  if (certificateEntriesFor(session.config.certificates, vmid).length === 0) return;
  session.certificatesDone = true;
  if (!certificateManagerFound(session)) return;
  info('Generating certificates (certificate-renewal-manager.sh --generate-only)...');
  // Siblings under one parent run would otherwise issue certificates at the same time.
  await hostStep(session, 'certificate', async () => {
    const code = await runChild(session, CERTIFICATE_SCRIPT, ['--generate-only']);
    if (code !== 0) throw new PhoenixError(`Certificate generation failed (exit ${code}); VM ${vmid} was not touched.`);
  });
}

// ---------------------------------------------------------------- helpers

function stringValues(options: Record<string, string | number | boolean | undefined | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) if (value !== undefined && value !== null) out[key] = String(value);
  return out;
}
