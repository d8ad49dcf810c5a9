// What vm-manager does, verb by verb. The script parses arguments and takes
// the host lock; everything else is here, callable in-process.
//
// create (and converge, which the CLI sends for every guest of a chain) is
// the bash's create sequence, made idempotent:
//   1. host directories of the NFS volumes; the certificate run (once);
//   2. under the VM's own lock: define the VM (clone --full, or qm create
//      importing the cloud image) unless it exists; a finished template is
//      left alone (Proxmox refuses to start one);
//   3. cloud-init files as snippets; every qm option the manifest owns, set
//      only where it differs (one qm set); the boot disk grown to
//      disk_size_gb;
//   4. inside the guest, only what the host record says is not done yet:
//      start, agent, cloud-init, NFS mounts, snapshots, features in order;
//   5. a template is cleaned, shut down and converted.
// A second create of an unchanged VM issues no mutating command and says so.

import path from 'node:path';
import fs from 'node:fs';
import * as qm from '../pve/qm.mts';
import { isDryRun } from '../core/context.mts';
import { CommandError, PhoenixError } from '../core/errors.mts';
import { debug, info, success, warn } from '../core/log.mts';
import { ensureDir, removeFile, writeFileAtomic } from '../core/fs.mts';
import { childEnv, type PhoenixOptions } from '../core/env.mts';
import { configPathsEnv, type PhoenixConfig } from '../config/load.mts';
import { resolveScript, runScript } from '../core/bridge.mts';
import { guestGraph } from '../config/guests.mts';
import { formatStatusTable } from '../pve/guest-status.mts';
import { guestLockPath, hostStepsLockPath, withLock } from '../guest/locks.mts';
import { finishSnapshotTask, isHalfMade, isSnapshotTaskUnfinished, removeHalfMadeGuest } from '../pve/half-made.mts';
import { applyGuestFirewall } from '../firewall/apply.mts';
import { certificateEntriesFor, vmSpec, type VmSpec } from './spec.mts';
import { createFromImageOptions, desiredOptions, diffAsOptions, diffOptions, isEmptyDiff, macOf, resizePlan, CLOUD_INIT_KEYS } from './options.mts';
import { cicustomValue, digest, PARTS, partContent, renderCloudInit, snippetName } from './cloud-init.mts';
import { findCloudImage, findSnippetStore } from './storage.mts';
import { readRecord, removeRecord, uuidOf, writeRecord, type VmRecord } from './record.mts';
import { guestScript, mountArgs, MOUNT_SCRIPT, TEMPLATE_CLEANUP_SCRIPT, waitForAgent, waitForCloudInit, type GuestTiming } from '../guest/vm-agent.mts';
import { featureScriptName, FeatureRunner, GUEST_STAGING_DIR, resolveVmScripts, type FeatureRunContext } from './features.mts';

export const CERTIFICATE_SCRIPT = 'managers/certificate-renewal-manager.sh';
export const SYNC_CERTS_SCRIPT = 'vm_features/feature_sync_docker_certs.sh';
export const SYNC_PROXY_SCRIPT = 'vm_features/feature_sync_docker_proxy.sh';
/** How long a guest gets to shut down cleanly before Proxmox stops it. */
export const SHUTDOWN_TIMEOUT_S = 180;
/** How long siblings under one parent run wait for each other's guest or host steps. */
const SIBLING_WAIT_S = 3600;

export interface VmSession {
  /** The upstream script name (log prefix, lock owner). */
  script: string;
  options: PhoenixOptions;
  config: PhoenixConfig;
  /** Token of the host lock held by this run or its parent, for child scripts. */
  lockToken: string | undefined;
  /** True under a parent's host lock: other guests may be worked on right now. */
  siblings: boolean;
  /** What a dry-run assumes about VMs it only pretended to create. */
  assumed: Map<string, VmView>;
  certificatesDone: boolean;
  snippetWarned: boolean;
}

export function newVmSession(init: Omit<VmSession, 'assumed' | 'certificatesDone' | 'snippetWarned'>): VmSession {
  return { ...init, assumed: new Map(), certificatesDone: false, snippetWarned: false };
}

export interface VmView {
  exists: boolean;
  config: Record<string, string>;
  running: boolean;
  template: boolean;
  /** Exists only in a dry-run's assumptions: nothing can be asked about it. */
  virtual: boolean;
}

const ABSENT: VmView = { exists: false, config: {}, running: false, template: false, virtual: false };

function timing(options: PhoenixOptions): GuestTiming {
  return {
    timeoutMs: options.guestTimeoutSeconds * 1000,
    pollMs: Math.max(10, options.pollIntervalMs),
    agentTimeoutMs: options.agentTimeoutSeconds * 1000,
  };
}

function lockOptions(session: VmSession, waitSeconds = session.options.lockWaitSeconds) {
  return { waitSeconds, script: session.script, enabled: !isDryRun() };
}

function childEnvironment(session: VmSession): Record<string, string> {
  return childEnv(session.options, { ...configPathsEnv(session.config.paths), ...(session.lockToken ? { PHOENIX_LOCK_TOKEN: session.lockToken } : {}) });
}

/** What the feature runner needs of a session, for one VM. */
function featureRunContext(session: VmSession, spec: VmSpec, timing: FeatureRunContext['timing'], guestReachable: boolean): FeatureRunContext {
  const { options } = session;
  return {
    spec,
    config: session.config,
    options,
    env: childEnvironment(session),
    legacyDir: options.legacyDir,
    useLegacy: options.useLegacy,
    hostRoot: options.hostRoot,
    timing,
    guestReachable,
  };
}

function specFor(session: VmSession, vmid: string): VmSpec {
  return vmSpec({ vmManifest: session.config.vm, vmFile: session.config.paths.vm, hypervisor: session.config.hypervisor }, vmid);
}

/** One `qm config` (and a `qm status` unless it is a template): the VM as it is now. */
export async function inspectVm(session: VmSession, vmid: string): Promise<VmView> {
  const assumed = session.assumed.get(vmid);
  if (assumed) return assumed;
  const found = await qm.configIfExists(vmid);
  if (found === undefined) return ABSENT;
  const config = found.values;
  const template = config.template === '1';
  const running = template ? false : (await qm.status(vmid)) === 'running';
  return { exists: true, config, running, template, virtual: false };
}

/**
 * A step that fails, or runs past its time limit, ends the run with exit 1
 * (the bash's log_fatal), keeping the reason and the hint.
 */
async function guestStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommandError || (err instanceof PhoenixError && err.exitCode !== 1)) {
      throw new PhoenixError(`${what}: ${err.message}`, { cause: err, ...(err.hint === undefined ? {} : { hint: err.hint }) });
    }
    throw err;
  }
}

// ---------------------------------------------------------------- create / converge

export async function createVm(session: VmSession, vmid: string, waitSeconds = session.options.lockWaitSeconds): Promise<string[]> {
  const spec = specFor(session, vmid);
  for (const note of spec.notes) info(`VM ${vmid}: ${note}`);
  // Every script the sequence may need is found before anything changes.
  const scripts = resolveVmScripts(spec.features.map(featureScriptName), session.options);
  const changes: string[] = [];
  ensureHostDirs(session, spec, changes);
  await certificateRun(session, vmid);
  const matches = await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session, waitSeconds), async () => {
    info(`Starting create workflow for VM ${vmid} (${spec.name})...`);
    return createLocked(session, spec, scripts, changes);
  });
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
  const apply = async () => {
    const result = await applyGuestFirewall(session.config, vmid);
    if (result.changed) changes.push('firewall');
  };
  if (session.siblings) await withLock(hostStepsLockPath(session.options.lockFile), lockOptions(session, SIBLING_WAIT_S), apply);
  else await apply();
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

/**
 * A run killed between `qm clone` and the snapshot that keeps the
 * template's state leaves a clone without it. The clone is still exactly
 * what `qm clone` made while nothing has been done to it since (no option
 * set, never started, nothing recorded), so the snapshot is taken now,
 * before anything changes it.
 */
/** Options vm-manager sets that a clone takes unchanged from its source (name and net0's MAC are the clone's own). */
const CLONE_KEPT_KEYS = ['cores', 'memory', 'agent', 'onboot', 'startup', 'ipconfig0', 'nameserver', 'searchdomain', 'ciuser', 'cicustom'] as const;

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

/** What has to happen inside the guest, then doing it. */
async function guestPhase(session: VmSession, spec: VmSpec, view: VmView, scripts: ReturnType<typeof resolveVmScripts>, created: boolean, changes: string[]): Promise<void> {
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
function shutdown(vmid: string) {
  info(`Shutting down VM ${vmid} (up to ${SHUTDOWN_TIMEOUT_S} s, then stopped)...`);
  return qm.shutdown(vmid, SHUTDOWN_TIMEOUT_S, { forceStop: true }, { timeoutMs: (SHUTDOWN_TIMEOUT_S + 60) * 1000 });
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
  try {
    resolveScript(CERTIFICATE_SCRIPT, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  } catch {
    warn(`${CERTIFICATE_SCRIPT} has neither a port nor a legacy copy here; skipping the certificate run (certificates are issued once it is installed)`);
    return;
  }
  info('Generating certificates (certificate-renewal-manager.sh --generate-only)...');
  const runIt = async () => {
    const result = await runScript(CERTIFICATE_SCRIPT, ['--generate-only'], {
      legacyDir: session.options.legacyDir,
      useLegacy: session.options.useLegacy,
      env: childEnvironment(session),
    });
    if (result.code !== 0) throw new PhoenixError(`Certificate generation failed (exit ${result.code}); VM ${vmid} was not touched.`);
  };
  // Siblings under one parent run would otherwise issue certificates at the same time.
  if (session.siblings) await withLock(hostStepsLockPath(session.options.lockFile), lockOptions(session, SIBLING_WAIT_S), runIt);
  else await runIt();
}

// ---------------------------------------------------------------- lifecycle

async function existing(session: VmSession, vmid: string): Promise<VmView> {
  const view = await inspectVm(session, vmid);
  if (!view.exists) throw new PhoenixError(`VM ${vmid} does not exist (create it first: vm-manager.sh create ${vmid})`);
  return view;
}

export async function startVm(session: VmSession, vmid: string): Promise<void> {
  await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session), async () => {
    const view = await existing(session, vmid);
    if (view.template) {
      info(`VM ${vmid} is a template; templates are never started.`);
      return;
    }
    if (view.running) {
      info(`VM ${vmid} is already running.`);
      return;
    }
    info(`Starting VM ${vmid}...`);
    await qm.start(vmid);
    success(`VM ${vmid} started.`);
  });
}

export async function stopVm(session: VmSession, vmid: string): Promise<void> {
  await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session), async () => {
    const view = await existing(session, vmid);
    if (view.template) {
      info(`VM ${vmid} is a template; it never runs.`);
      return;
    }
    if (!view.running) {
      info(`VM ${vmid} is already stopped.`);
      return;
    }
    // The bash's stop was fatal (exit 1) when qm failed.
    await guestStep(`stopping VM ${vmid}`, () => shutdown(vmid));
    success(`VM ${vmid} stopped.`);
  });
}

export async function restartVm(session: VmSession, vmid: string): Promise<void> {
  await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session), async () => {
    const view = await existing(session, vmid);
    if (view.template) {
      info(`VM ${vmid} is a template; templates are never started.`);
      return;
    }
    if (view.running) await shutdown(vmid);
    info(`Starting VM ${vmid}...`);
    await qm.start(vmid);
    success(`VM ${vmid} restarted.`);
  });
}

export async function deleteVm(session: VmSession, vmid: string): Promise<void> {
  await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session), async () => {
    const view = await inspectVm(session, vmid);
    if (!view.exists) {
      info(`VM ${vmid} does not exist; nothing to delete.`);
      return;
    }
    if (view.running) {
      info(`Stopping VM ${vmid}...`);
      const stopped = await qm.stop(vmid, { allowFailure: true });
      if (stopped.code !== 0) warn(`qm stop ${vmid} failed (exit ${stopped.code}); trying to destroy it anyway`);
    }
    info(`Destroying VM ${vmid} (with --purge: backup jobs, replication and HA entries go too)...`);
    await guestStep(`destroying VM ${vmid}`, () => qm.destroy(vmid, { purge: true }));
    removeRecord(session.options.hostRoot, vmid);
    const store = await findSnippetStore(session.config.hypervisor, snippetName(vmid, 'user'));
    if (store) for (const part of PARTS) removeFile(path.join(session.options.hostRoot, store.dir, snippetName(vmid, part)));
    const entry = session.config.vm.vms.find((vm) => String(vm.vmid) === vmid);
    const kept = (entry?.volumes ?? []).map((v) => v.path);
    if (kept.length > 0) info(`Host data of VM ${vmid} is kept: ${kept.join(', ')}`);
    success(`VM ${vmid} deleted.`);
  });
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
  await withLock(guestLockPath(session.options.lockFile, vmid), lockOptions(session), async () => {
    const view = await existing(session, vmid);
    if (!view.running && !isDryRun()) throw new PhoenixError(`VM ${vmid} is not running; start it before a sync`);
    const runner = new FeatureRunner(featureRunContext(session, spec, timing(session.options), view.running), inGuest);
    // The bash certificate sync is host code (it ran the renewal manager);
    // the bash proxy sync is guest code, which the bash ran on the host.
    await guestStep(`Docker certificate sync for VM ${vmid}`, () => runner.run(SYNC_CERTS_SCRIPT, 'Docker certificate sync', 'host'));
    await guestStep(`Docker proxy sync for VM ${vmid}`, () => runner.run(SYNC_PROXY_SCRIPT, 'Docker proxy sync'));
    success(`VM ${vmid} synced.`);
  });
}

export async function statusTable(session: VmSession, ids: readonly string[]): Promise<string> {
  const states = new Map<string, 'running' | 'stopped' | 'absent'>();
  for (const id of ids) states.set(id, await qm.status(id));
  return formatStatusTable(guestGraph(session.config), session.config, ids, states);
}

// ---------------------------------------------------------------- helpers

function stringValues(options: Record<string, string | number | boolean | undefined | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) if (value !== undefined && value !== null) out[key] = String(value);
  return out;
}
