// lxc-manager's actions: the create sequence, in the bash's order, and the
// lifecycle verbs, as one idempotent pass per container.
//
// Every step first looks (one `pct config` per phase), then changes only what
// differs, and says what it changed; a container that already matches its
// manifest gets no mutating command at all. The steps Proxmox cannot answer
// for (features, application script, health checks) are kept in a lifecycle
// record (record.mts), so a run that failed half-way resumes where it stopped
// and a second run of an unchanged container runs none of them again.
//
// Dry-run: every mutating command and file write is printed instead; what a
// printed `pct create`/`clone`/`start` would have produced is assumed, so the
// rest of the plan can still be shown.

import fs from 'node:fs';
import path from 'node:path';
import type { LxcConfig } from '../config-types.mts';
import type { PhoenixConfig } from '../config.mts';
import { configPathsEnv } from '../config.mts';
import { childEnv, type PhoenixOptions } from '../env.mts';
import { CommandError, ConfigError, PhoenixError } from '../errors.mts';
import { UnsafeValueError } from '../field-values.mts';
import { debug, info, success, warn } from '../log.mts';
import * as pct from '../pct.mts';
import type { PveConfig } from '../pve-args.mts';
import { run, sleep } from '../runner.mts';
import { isDryRun } from '../context.mts';
import { resolveScript, runScript } from '../bridge.mts';
import { pvesmStatus, pveamList, pveamDownload, pvesmPath } from '../storage.mts';
import { guestGraph } from '../guests.mts';
import { formatStatusTable } from '../status.mts';
import { applyRawPlan } from './conf.mts';
import { applyHostDirs, exclusiveHostDirs, onHost, planHostDirs } from './hostdirs.mts';
import { grantIdRanges } from './subids.mts';
import { guestLockPath, hostStepsLockPath, withLock } from './locks.mts';
import {
  assumedConfigAfterClone,
  assumedConfigAfterCreate,
  checkManifestValues,
  createOptions,
  formatRawLine,
  isEmptyPlan,
  parseProps,
  planConfig,
  type ConfigPlan,
} from './plan.mts';
import { emptyRecord, readRecord, removeRecord, writeRecord, type LifecycleRecord } from './record.mts';
import { resolveAppScript, runApplicationScript, scriptDigest } from './appscript.mts';
import { finishSnapshotTask, isHalfMade, isSnapshotTaskUnfinished, releaseCloneSource, removeHalfMadeGuest } from '../half-made.mts';
import { healthScript, runProbe } from './health.mts';

export const SNAPSHOT_PRE_CONFIGURED = 'pre-configured';
export const SNAPSHOT_FINAL_FORM = 'final-form';

const FIREWALL_SCRIPT = 'hypervisor_setup/hypervisor_feature_setup_firewall.sh';
const CERTIFICATE_SCRIPT = 'managers/certificate-renewal-manager.sh';
const TRAEFIK_SYNC_SCRIPT = 'lxc_setup/phoenix_hypervisor_feature_sync_traefik_certs.sh';
const featureScript = (feature: string) => `lxc_setup/phoenix_hypervisor_feature_install_${feature}.sh`;

/** Everything an action needs; one per process. */
export interface LxcSession {
  /** The upstream script name (log prefix, lock owner). */
  script: string;
  options: PhoenixOptions;
  config: PhoenixConfig;
  /** Token of the host lock held by this run or its parent, handed to child scripts. */
  lockToken: string | undefined;
  /**
   * True when this process runs under a parent's host lock, so sibling
   * processes may be working on other guests right now: then clones of one
   * source and the host-wide steps take turns.
   */
  siblings: boolean;
  /** What a dry-run assumes about guests it only pretended to change. */
  assumed: Map<string, GuestView>;
  certificatesDone: boolean;
}

export function newSession(init: Omit<LxcSession, 'assumed' | 'certificatesDone'>): LxcSession {
  return { ...init, assumed: new Map(), certificatesDone: false };
}

export interface GuestView {
  exists: boolean;
  config: PveConfig | undefined;
  running: boolean;
  template: boolean;
  /** Exists only in a dry-run's assumptions: nothing can be asked about it. */
  virtual: boolean;
}

const ABSENT: GuestView = { exists: false, config: undefined, running: false, template: false, virtual: false };

// ---------------------------------------------------------------- looking

/** One `pct config` (and a `pct status` unless it is a template): the container as it is now. */
export async function inspect(session: LxcSession, ctid: string): Promise<GuestView> {
  const assumed = session.assumed.get(ctid);
  if (assumed) return assumed;
  const config = await pct.configIfExists(ctid);
  if (config === undefined) return ABSENT;
  const template = config.values.template === '1';
  const running = template ? false : (await pct.status(ctid)) === 'running';
  return { exists: true, config, running, template, virtual: false };
}

function manifestEntry(session: LxcSession, ctid: string): LxcConfig {
  const ct = session.config.lxc.lxc_configs[ctid];
  if (!ct) throw new PhoenixError(`Configuration for CTID ${ctid} not found in ${session.config.paths.lxc}.`);
  return ct;
}

function childEnvironment(session: LxcSession): Record<string, string> {
  return childEnv(session.options, { ...configPathsEnv(session.config.paths), ...(session.lockToken ? { PHOENIX_LOCK_TOKEN: session.lockToken } : {}) });
}

async function runChild(session: LxcSession, name: string, args: readonly string[]): Promise<number> {
  const result = await runScript(name, args, {
    legacyDir: session.options.legacyDir,
    useLegacy: session.options.useLegacy,
    env: childEnvironment(session),
  });
  return result.code;
}

function scriptExists(session: LxcSession, name: string): boolean {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
    return true;
  } catch {
    return false;
  }
}

/** Fail before any change when a script the sequence will need is nowhere to be found. */
function requireScript(session: LxcSession, name: string, what: string): void {
  try {
    resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  } catch (err) {
    const reason = err instanceof PhoenixError ? err.message : String(err);
    throw new PhoenixError(`${what} not found: ${reason}`, err instanceof PhoenixError && err.hint ? { hint: err.hint } : {});
  }
}

/** Lifecycle snapshots are on per container, or for all at the manifest's root. */
function snapshotsEnabled(session: LxcSession, ct: LxcConfig): boolean {
  return (ct.enable_lifecycle_snapshots ?? session.config.lxc.enable_lifecycle_snapshots) === true;
}

function lockOptions(session: LxcSession, waitSeconds = session.options.lockWaitSeconds) {
  return { waitSeconds, script: session.script, enabled: !isDryRun() };
}

/** Every pct failure of a step is fatal (exit 1), as log_fatal made it; the message keeps pct's reason. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CommandError) throw new PhoenixError(`${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** A manifest value a plan cannot write is the manifest's error: named by file and JSON pointer. */
function manifestValues<T>(session: LxcSession, ctid: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnsafeValueError) throw new ConfigError(session.config.paths.lxc, `/lxc_configs/${ctid}/${err.field}`, err.message.slice(err.field.length + 2));
    throw err;
  }
}

// ---------------------------------------------------------------- create / converge

export type CreateMode = 'create' | 'converge';

export async function createContainer(session: LxcSession, ctid: string, mode: CreateMode, lockWaitSeconds = session.options.lockWaitSeconds): Promise<string[]> {
  const ct = manifestEntry(session, ctid);
  return withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session, lockWaitSeconds), () => createLocked(session, ctid, ct, mode));
}

async function createLocked(session: LxcSession, ctid: string, ct: LxcConfig, mode: CreateMode): Promise<string[]> {
  info(`Starting '${mode}' workflow for CTID ${ctid}...`);
  const changes: string[] = [];
  manifestValues(session, ctid, () => checkManifestValues(ct));
  let view = await inspect(session, ctid);
  const lock = view.virtual ? undefined : view.config?.values.lock;
  if (view.exists && isHalfMade('pct', lock)) {
    await step(`Failed to remove the half-made CT ${ctid}`, () => removeHalfMadeGuest('pct', ctid, lock as string));
    removeRecord(session.options.hostRoot, ctid);
    changes.push('removed a half-made container');
    view = ABSENT;
  }
  if (view.exists && isSnapshotTaskUnfinished(lock)) {
    const removed = await step(`Failed to finish the interrupted snapshot task of CT ${ctid}`, () => finishSnapshotTask('pct', ctid, lock as string));
    changes.push(...removed.map((name) => `removed the unfinished snapshot ${name}`));
    view = await inspect(session, ctid);
  }

  if (view.exists && view.template) {
    if (ct.is_template !== true) warn(`CT ${ctid} is a template, but the manifest does not say is_template`);
    if (mode === 'create') {
      // A template is finished work; changing it would break its linked clones.
      success(`CT ${ctid} is already a template; unchanged.`);
      return changes;
    }
    await configure(session, ctid, ct, view, changes);
    finish(mode, ctid, changes);
    return changes;
  }

  preflight(session, ctid, ct, view.exists);

  changes.push(...applyHostDirs(planHostDirs(ctid, session.config.lxc, session.options.hostRoot)));
  await hostStep(session, 'id ranges', async () => void changes.push(...grantIdRanges(session.config.lxc, session.options.hostRoot)));
  // The CA container's own create issues certificates only once the CA is
  // finished: a CA a killed run left half-made cannot issue any, and the
  // first, uninterrupted create of that container issues none either.
  const known: { snapshots?: string[] } = {};
  if (!(await caUnfinished(session, ctid, ct, view, known))) await certificateRun(session);

  let created = false;
  if (!view.exists) {
    view = await define(session, ctid, ct, changes);
    created = true;
  }
  const rootfs = parseProps(view.config?.values.rootfs ?? '', 'volume').volume ?? '';
  const record = created ? emptyRecord(ctid, rootfs) : readRecord(session.options.hostRoot, ctid, rootfs);

  view = await configure(session, ctid, ct, view, changes);

  const wantsTemplate = ct.is_template === true;
  const appDigest = ct.application_script ? await scriptDigest(resolveAppScript(ct.application_script, session.options)) : undefined;
  const pending = pendingInside(ct, record, appDigest, changes.length > 0);
  if (!wantsTemplate || pending.length > 0) view = await ensureStarted(session, ctid, view, changes);

  await hostStep(session, 'firewall', async () => {
    const code = await runChild(session, FIREWALL_SCRIPT, []);
    if (code !== 0) throw new PhoenixError(`Firewall setup failed for CTID ${ctid} (${FIREWALL_SCRIPT} exited ${code}).`);
  });

  const snapshots = wantsTemplate || view.virtual ? [] : (known.snapshots ?? (await pct.listSnapshots(ctid)));
  const useSnapshots = snapshotsEnabled(session, ct) && !wantsTemplate;
  if (wantsTemplate) info(`Container ${ctid} is a template, skipping all snapshot creation.`);
  if (useSnapshots) await ensureSnapshot(ctid, SNAPSHOT_PRE_CONFIGURED, snapshots, changes);

  await applyFeatures(session, ctid, ct, record, changes);
  await applicationScript(session, ctid, ct, appDigest, record, changes);
  await healthChecks(session, ctid, ct, view, record, changes);

  if (!wantsTemplate && ct.template_snapshot_name) await ensureSnapshot(ctid, ct.template_snapshot_name, snapshots, changes);
  if (useSnapshots) await ensureSnapshot(ctid, SNAPSHOT_FINAL_FORM, snapshots, changes);
  if (wantsTemplate) await convertToTemplate(session, ctid, view, changes);

  finish(mode, ctid, changes);
  return changes;
}

/** Whether `ctid` is the Step-CA container and exists with lifecycle work still pending (its CA may be half-made). */
async function caUnfinished(session: LxcSession, ctid: string, ct: LxcConfig, view: GuestView, known: { snapshots?: string[] }): Promise<boolean> {
  if (ctid !== (session.config.hypervisor.step_ca?.ctid ?? '103') || !view.exists || view.virtual || view.template) return false;
  const rootfs = parseProps(view.config?.values.rootfs ?? '', 'volume').volume ?? '';
  const record = readRecord(session.options.hostRoot, ctid, rootfs);
  const appDigest = ct.application_script ? await scriptDigest(resolveAppScript(ct.application_script, session.options)) : undefined;
  const pending = pendingInside(ct, record, appDigest, false);
  // Its last steps are snapshots: a create killed before them is not finished either.
  const wanted = [...(ct.is_template !== true && ct.template_snapshot_name ? [ct.template_snapshot_name] : []), ...(snapshotsEnabled(session, ct) && ct.is_template !== true ? [SNAPSHOT_FINAL_FORM] : [])];
  if (pending.length === 0 && wanted.length > 0) {
    // Kept for the snapshot steps below: nothing in between takes or removes one.
    const taken = (known.snapshots = await pct.listSnapshots(ctid));
    pending.push(...wanted.filter((name) => !taken.includes(name)).map((name) => `snapshot ${name}`));
  }
  if (pending.length === 0) return false;
  info(`CT ${ctid} holds the CA and is not finished (${pending.join(', ')} pending); certificates are issued once it is`);
  return true;
}

function finish(mode: string, ctid: string, changes: readonly string[]): void {
  if (changes.length === 0) success(`'${mode}' workflow completed for CTID ${ctid}: unchanged, nothing to do.`);
  else success(`'${mode}' workflow completed for CTID ${ctid}: ${changes.length} change${changes.length === 1 ? '' : 's'} (${changes.join('; ')}).`);
}

function preflight(session: LxcSession, ctid: string, ct: LxcConfig, exists: boolean): void {
  for (const feature of ct.features ?? []) requireScript(session, featureScript(feature), `Feature script '${feature}' for CTID ${ctid}`);
  if (ct.application_script) requireScript(session, ct.application_script, `Application script '${ct.application_script}' for CTID ${ctid}`);
  for (const check of ct.health_checks ?? []) requireScript(session, healthScript(check.script), `Health check '${check.script}' for CTID ${ctid}`);
  if ((ct.features ?? []).includes('nvidia')) requireScript(session, healthScript('check_nvidia.sh'), `Health check 'check_nvidia.sh' for CTID ${ctid}`);
  requireScript(session, FIREWALL_SCRIPT, 'The firewall generator');
  if (!exists && !ct.clone_from_ctid && !ct.template) throw new PhoenixError(`No creation method found for ${ctid}: it needs clone_from_ctid or template.`);
}

/** Work that needs the container running: what has not been recorded as done yet. */
function pendingInside(ct: LxcConfig, record: LifecycleRecord, appDigest: string | undefined, changed: boolean): string[] {
  const pending: string[] = (ct.features ?? []).filter((f) => !record.features.includes(f));
  if (ct.application_script && !appScriptDone(record, ct.application_script, appDigest)) pending.push(ct.application_script);
  if (hasHealthChecks(ct) && (changed || record.health !== 'passed')) pending.push('health checks');
  return pending;
}

// ---------------------------------------------------------------- host-wide steps

async function hostStep(session: LxcSession, what: string, fn: () => Promise<void>): Promise<void> {
  // Siblings under the same parent lock would otherwise regenerate the
  // firewall or renew certificates at the same time.
  if (!session.siblings) return fn();
  debug(`waiting for the host-wide ${what} step`);
  return withLock(hostStepsLockPath(session.options.lockFile), lockOptions(session, 3600), fn);
}

async function certificateRun(session: LxcSession): Promise<void> {
  if (session.certificatesDone) return;
  session.certificatesDone = true;
  try {
    resolveScript(CERTIFICATE_SCRIPT, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  } catch {
    warn(`${CERTIFICATE_SCRIPT} has neither a port nor a legacy copy here; skipping the certificate run (certificates are issued once it is installed)`);
    return;
  }
  info('Ensuring the certificate warehouse is up to date...');
  await hostStep(session, 'certificate', async () => {
    const code = await runChild(session, CERTIFICATE_SCRIPT, []);
    if (code !== 0) throw new PhoenixError(`Certificate generation failed (exit ${code}). Aborting create workflow.`);
  });
  success('Certificate warehouse is up to date.');
}

// ---------------------------------------------------------------- define

async function define(session: LxcSession, ctid: string, ct: LxcConfig, changes: string[]): Promise<GuestView> {
  info(`Container ${ctid} does not exist. Proceeding with creation...`);
  if (ct.clone_from_ctid) return cloneFromSource(session, ctid, ct, ct.clone_from_ctid, changes);
  return createFromOsTemplate(session, ctid, ct, ct.template as string, changes);
}

async function cloneFromSource(session: LxcSession, ctid: string, ct: LxcConfig, source: string, changes: string[]): Promise<GuestView> {
  const sourceCt = session.config.lxc.lxc_configs[source];
  let sourceView = await inspect(session, source);
  // A source that is missing, or a template-to-be that a failed run left
  // unfinished, is brought to its full manifest state first, so the clone
  // never copies a half-built container.
  if (!sourceView.exists || (sourceCt?.is_template === true && !sourceView.template)) {
    if (!sourceCt) throw new PhoenixError(`Source container ${source} of CTID ${ctid} does not exist and is not in ${session.config.paths.lxc}.`);
    info(`Clone source ${source} is ${sourceView.exists ? 'not finished' : 'missing'}; creating it first.`);
    // A sibling may be creating the same source right now: wait for it.
    await createContainer(session, source, 'create', session.siblings ? 3600 : session.options.lockWaitSeconds);
    sourceView = await inspect(session, source);
  }
  // Proxmox locks the source for the whole clone; siblings cloning the same
  // template wait their turn instead of failing with "CT is locked (disk)".
  const sourceLock = session.siblings ? lockOptions(session, 3600) : { ...lockOptions(session), enabled: false };
  await withLock(guestLockPath(session.options.lockFile, source), sourceLock, async () => {
    // A clone killed in the middle leaves its source marked; no clone of it runs now (its lock is ours).
    if (!sourceView.virtual && sourceView.config?.values.lock === 'disk') {
      const now = session.siblings ? (await pct.config(source)).values.lock : 'disk';
      if (now === 'disk') await step(`Failed to unlock CT ${source}`, () => releaseCloneSource(source));
    }
    return step(`'pct clone' failed for CTID ${ctid}`, () => pct.clone(source, ctid, { hostname: ct.name }));
  });
  changes.push(`cloned from ${source}`);
  if (isDryRun()) {
    const assumed: GuestView = { exists: true, config: assumedConfigAfterClone(sourceView.config ?? { entries: [], values: {} }, ct.name), running: false, template: false, virtual: true };
    session.assumed.set(ctid, assumed);
    return assumed;
  }
  return { exists: true, config: await pct.config(ctid), running: false, template: false, virtual: false };
}

async function createFromOsTemplate(session: LxcSession, ctid: string, ct: LxcConfig, template: string, changes: string[]): Promise<GuestView> {
  const storages = await pvesmStatus();
  if (!storages.some((s) => s.name === ct.storage_pool)) throw new PhoenixError(`Storage pool '${ct.storage_pool}' does not exist (pvesm status).`);
  const ostemplate = await ensureOsTemplate(session, template, changes);
  const options = createOptions(ct);
  await step(`'pct create' failed for CTID ${ctid}`, () => pct.create(ctid, ostemplate, options, { timeoutMs: 30 * 60_000 }));
  changes.push(`created from ${ostemplate}`);
  if (isDryRun()) {
    const assumed: GuestView = { exists: true, config: assumedConfigAfterCreate(ctid, options), running: false, template: false, virtual: true };
    session.assumed.set(ctid, assumed);
    return assumed;
  }
  return { exists: true, config: await pct.config(ctid), running: false, template: false, virtual: false };
}

/**
 * The OS template `pct create` is given is the one that was checked (and
 * downloaded when missing), whichever form the manifest uses:
 * a volume id (`storage:vztmpl/file`) is looked up in its storage; an
 * absolute path is used when it exists, else its file is downloaded to the
 * hypervisor's ISO storage and used from there.
 */
async function ensureOsTemplate(session: LxcSession, template: string, changes: string[]): Promise<string> {
  const volid = /^([A-Za-z][A-Za-z0-9_.-]*):vztmpl\/(.+)$/.exec(template);
  if (volid) {
    const [, storage, file] = volid as unknown as [string, string, string];
    if ((await pveamList(storage)).includes(template)) return template;
    info(`OS template ${template} is not in storage ${storage}; downloading it.`);
    await step(`Failed to download ${file}`, () => pveamDownload(storage, file));
    changes.push(`downloaded ${file} to ${storage}`);
    return template;
  }
  if (fs.existsSync(onHost(session.options.hostRoot, template))) return template;
  const storage = session.config.hypervisor.proxmox_storage_ids?.fastData_shared_iso;
  if (!storage) throw new PhoenixError(`OS template ${template} does not exist and no ISO storage (proxmox_storage_ids.fastData_shared_iso) is configured to download it to.`);
  const file = path.basename(template);
  const target = `${storage}:vztmpl/${file}`;
  if (!(await pveamList(storage)).includes(target)) {
    info(`OS template ${template} not found; downloading ${file} to ${storage}.`);
    await step(`Failed to download ${file}`, () => pveamDownload(storage, file));
    changes.push(`downloaded ${file} to ${storage}`);
  }
  return target;
}

// ---------------------------------------------------------------- configure

async function configure(session: LxcSession, ctid: string, ct: LxcConfig, view: GuestView, changes: string[]): Promise<GuestView> {
  const current = view.config ?? { entries: [], values: {} };
  // The whole plan, every value checked for the place it goes, before the
  // container is stopped for it: a refused value leaves a running guest running.
  const plan = manifestValues(session, ctid, () => planConfig({ ct, current, isTemplate: view.template }));
  for (const note of plan.notes) warn(`CT ${ctid}: ${note}`);
  if (isEmptyPlan(plan)) {
    debug(`CT ${ctid}: configuration matches the manifest`);
    return view;
  }
  let next = view;
  if (view.running) {
    info(`Stopping CT ${ctid} to apply its configuration.`);
    await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    changes.push('stopped to reconfigure');
    next = { ...view, running: false };
  }
  await applyPlan(session, ctid, next, plan, changes);
  // What the config now says, without asking again: nothing later reads more than these values.
  const values = { ...current.values, ...plan.set };
  for (const key of plan.delete) delete values[key];
  next = { ...next, config: { entries: Object.entries(values), values } };
  if (isDryRun()) session.assumed.set(ctid, next);
  return next;
}

async function applyPlan(session: LxcSession, ctid: string, view: GuestView, plan: ConfigPlan, changes: string[]): Promise<void> {
  const setKeys = Object.keys(plan.set);
  if (setKeys.length > 0 || plan.delete.length > 0) {
    info(`Applying configuration to CT ${ctid}: ${[...setKeys, ...plan.delete.map((k) => `-${k}`)].join(', ')}`);
    // One call: Proxmox validates every option before it writes any, so a
    // bad value leaves the config as it was.
    await step(`Failed to configure CT ${ctid}`, () => pct.set(ctid, plan.set, plan.delete));
    changes.push(`set ${[...setKeys, ...plan.delete.map((k) => `-${k}`)].join(',')}`);
  }
  if (plan.raw.add.length > 0 || plan.raw.remove.length > 0) {
    for (const line of plan.raw.remove) info(`CT ${ctid}: removing '${formatRawLine(line)}'`);
    for (const line of plan.raw.add) info(`CT ${ctid}: adding '${formatRawLine(line)}'`);
    if (view.virtual) info(`DRY-RUN: would edit ${path.join(session.options.pveDir, 'lxc', `${ctid}.conf`)}`);
    else applyRawPlan(session.options.pveDir, ctid, plan.raw);
    changes.push(`raw lines +${plan.raw.add.length}/-${plan.raw.remove.length}`);
  }
  for (const { disk, size } of plan.resize) {
    const result = await step(`Failed to resize ${disk} of CT ${ctid}`, () => pct.resize(ctid, disk, size, { allowFailure: true }));
    if (result.code !== 0 && !/already at specified size/.test(result.stderr)) {
      throw new PhoenixError(`Failed to resize ${disk} of CT ${ctid} to ${size}: ${result.stderr.trim()}`);
    }
    if (result.code === 0) changes.push(`resized ${disk} to ${size}`);
  }
}

// ---------------------------------------------------------------- start, snapshots, template

async function ensureStarted(session: LxcSession, ctid: string, view: GuestView, changes: string[]): Promise<GuestView> {
  if (view.running) {
    debug(`CT ${ctid} is already running`);
    return view;
  }
  await startWithRetries(session, ctid);
  changes.push('started');
  const next = { ...view, running: true };
  if (isDryRun()) session.assumed.set(ctid, next);
  return next;
}

async function startWithRetries(session: LxcSession, ctid: string): Promise<void> {
  await step(`Failed to start container ${ctid} after 3 attempts`, () =>
    pct.start(ctid, {
      retry: {
        attempts: 3,
        delayMs: session.options.startRetryDelayMs,
        // Proxmox's refusals are final; anything else may be a slow bridge or storage.
        when: (r) => !/already running|if it's a template/.test(r.stderr),
      },
    }),
  );
}

async function ensureSnapshot(ctid: string, name: string, existing: string[], changes: string[]): Promise<void> {
  if (existing.includes(name)) {
    debug(`snapshot '${name}' of CT ${ctid} exists`);
    return;
  }
  info(`Creating snapshot '${name}' for CT ${ctid}...`);
  const result = await pct.snapshot(ctid, name, undefined, { allowFailure: true });
  if (result.code !== 0) {
    const output = `${result.stderr}\n${result.stdout}`;
    if (/snapshot feature is not available/.test(output)) {
      warn(`Snapshot feature is not available for CT ${ctid}'s storage; skipping snapshot '${name}'.`);
      return;
    }
    throw new PhoenixError(`Failed to create snapshot '${name}' for CT ${ctid}: ${output.trim()}`);
  }
  existing.push(name);
  changes.push(`snapshot ${name}`);
}

async function convertToTemplate(session: LxcSession, ctid: string, view: GuestView, changes: string[]): Promise<void> {
  if (view.template) return;
  const current = view.virtual ? view : { ...view, running: (await pct.status(ctid)) === 'running' };
  if (current.running) {
    await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    if (!isDryRun()) await waitStopped(ctid);
  }
  await step(`Failed to convert CT ${ctid} to a template`, () => pct.template(ctid));
  changes.push('converted to a template');
  if (isDryRun()) session.assumed.set(ctid, { ...view, running: false, template: true });
}

async function waitStopped(ctid: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await pct.status(ctid)) === 'running') {
    if (Date.now() > deadline) throw new PhoenixError(`CT ${ctid} is still running ${timeoutMs / 1000} s after 'pct stop'.`);
    await sleep(1000);
  }
}

// ---------------------------------------------------------------- inside the container

async function applyFeatures(session: LxcSession, ctid: string, ct: LxcConfig, record: LifecycleRecord, changes: string[]): Promise<void> {
  const features = ct.features ?? [];
  if (features.length === 0) {
    info(`No features to apply for CTID ${ctid}.`);
    return;
  }
  const missing = features.filter((f) => !record.features.includes(f));
  if (missing.length === 0) {
    debug(`features of CT ${ctid} already applied: ${features.join(' ')}`);
    return;
  }
  info(`Features to apply for CTID ${ctid}: ${missing.join(' ')}`);
  for (const feature of missing) {
    // The second argument is always passed, even empty, as the feature scripts expect.
    const code = await runChild(session, featureScript(feature), [ctid, ct.bootstrap_ca_url ?? '']);
    if (code !== 0) throw new PhoenixError(`Feature script '${feature}' failed for CTID ${ctid} (exit ${code}).`);
    record.features.push(feature);
    saveRecord(session, record);
    changes.push(`feature ${feature}`);
  }
}

function appScriptDone(record: LifecycleRecord, name: string, digest: string | undefined): boolean {
  return record.application_script?.name === name && record.application_script.digest === digest;
}

async function applicationScript(session: LxcSession, ctid: string, ct: LxcConfig, digest: string | undefined, record: LifecycleRecord, changes: string[]): Promise<void> {
  const name = ct.application_script;
  if (!name || digest === undefined) {
    debug(`No application script for CTID ${ctid}.`);
    return;
  }
  if (appScriptDone(record, name, digest)) {
    debug(`application script ${name} already ran in CT ${ctid}`);
    return;
  }
  await runApplicationScript(ctid, name, {
    config: session.config,
    baseDir: session.options.baseDir,
    legacyDir: session.options.legacyDir,
    useLegacy: session.options.useLegacy,
    env: childEnvironment(session),
    hostRoot: session.options.hostRoot,
  });
  record.application_script = { name, digest };
  delete record.health;
  saveRecord(session, record);
  changes.push(`application script ${name}`);
}

function hasHealthChecks(ct: LxcConfig): boolean {
  return (ct.features ?? []).includes('nvidia') || (ct.health_checks ?? []).length > 0 || ct.health_check !== undefined;
}

async function healthChecks(session: LxcSession, ctid: string, ct: LxcConfig, view: GuestView, record: LifecycleRecord, changes: string[]): Promise<void> {
  if (!hasHealthChecks(ct)) {
    debug(`No declarative health checks for CTID ${ctid}.`);
    return;
  }
  if (record.health === 'passed' && changes.length === 0) {
    debug(`health checks of CT ${ctid} passed before and nothing changed since`);
    return;
  }
  if (view.virtual) {
    info(`DRY-RUN: would run the health checks of CT ${ctid} once it exists`);
    return;
  }
  if ((ct.features ?? []).includes('nvidia')) await hostHealthCheck(session, ctid, 'check_nvidia.sh', [ctid]);
  for (const check of ct.health_checks ?? []) {
    // An argument vector, never a shell string: a manifest value cannot add shell syntax.
    const args = Array.isArray(check.args) ? check.args : (check.args ?? '').split(/\s+/).filter(Boolean);
    await hostHealthCheck(session, ctid, check.script, args);
  }
  if (ct.health_check) {
    await runProbe(
      {
        ctid,
        config: session.config,
        options: session.options,
        runHostScript: async (name, args) => (scriptExists(session, name) ? runChild(session, name, args) : undefined),
      },
      ct.health_check,
    );
  }
  record.health = 'passed';
  saveRecord(session, record);
  success(`Health checks passed for CTID ${ctid}.`);
}

async function hostHealthCheck(session: LxcSession, ctid: string, script: string, args: readonly string[]): Promise<void> {
  info(`Running health check ${script} for CTID ${ctid}...`);
  const code = await runChild(session, healthScript(script), args);
  if (code !== 0) throw new PhoenixError(`Health check '${script}' failed for CTID ${ctid} (exit ${code}).`);
}

function saveRecord(session: LxcSession, record: LifecycleRecord): void {
  if (!isDryRun()) writeRecord(session.options.hostRoot, record);
}

// ---------------------------------------------------------------- lifecycle verbs

export async function startContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) throw new PhoenixError(`Container ${ctid} does not exist; create it first.`);
    if (view.template) {
      warn(`Container ${ctid} is a template; templates cannot be started.`);
      return;
    }
    if (view.running) {
      info(`Container ${ctid} is already running.`);
      return;
    }
    info(`Starting container ${ctid}...`);
    await startWithRetries(session, ctid);
    success(`Container ${ctid} started.`);
  });
}

export async function stopContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) {
      warn(`Container ${ctid} does not exist; nothing to stop.`);
      return;
    }
    if (view.template) {
      info(`Container ${ctid} is a template; templates never run.`);
      return;
    }
    if (!view.running) {
      info(`Container ${ctid} is already stopped.`);
      return;
    }
    await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    success(`Container ${ctid} stopped.`);
  });
}

export async function restartContainer(session: LxcSession, ctid: string): Promise<void> {
  manifestEntry(session, ctid);
  await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const view = await inspect(session, ctid);
    if (!view.exists) throw new PhoenixError(`Container ${ctid} does not exist; create it first.`);
    if (view.template) {
      warn(`Container ${ctid} is a template; templates cannot be restarted.`);
      return;
    }
    if (view.running) await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
    await startWithRetries(session, ctid);
    success(`Container ${ctid} restarted.`);
  });
}

/**
 * Stop and destroy the container, then remove what create made for it on
 * the host: its firewall file (when Proxmox left one) and its lifecycle
 * record. Host data directories only with `purgeData`, and only those no
 * other container mounts.
 */
export async function deleteContainer(session: LxcSession, ctid: string, options: { purgeData: boolean }): Promise<string[]> {
  manifestEntry(session, ctid);
  return withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
    const changes: string[] = [];
    const view = await inspect(session, ctid);
    if (!view.exists) info(`Container ${ctid} does not exist.`);
    else {
      if (view.running) {
        await step(`Failed to stop container ${ctid}`, () => pct.stop(ctid));
        changes.push('stopped');
      }
      await step(`Failed to destroy container ${ctid}`, () => pct.destroy(ctid));
      changes.push('destroyed (with its snapshots)');
    }
    const firewallFile = path.join(session.options.pveDir, 'firewall', `${ctid}.fw`);
    if (fs.existsSync(firewallFile)) {
      if (isDryRun()) info(`DRY-RUN: would remove ${firewallFile}`);
      else fs.rmSync(firewallFile, { force: true });
      changes.push(`removed ${firewallFile}`);
    }
    if (removeRecord(session.options.hostRoot, ctid)) changes.push('removed its lifecycle record');
    const dirs = exclusiveHostDirs(ctid, session.config.lxc, session.options.hostRoot);
    if (options.purgeData) {
      for (const dir of dirs.remove.filter((d) => fs.existsSync(d))) {
        if (isDryRun()) info(`DRY-RUN: would remove ${dir}`);
        else fs.rmSync(dir, { recursive: true, force: true });
        changes.push(`purged ${dir}`);
      }
      for (const dir of dirs.shared) warn(`kept ${dir}: another container mounts it too`);
    } else {
      const kept = dirs.remove.filter((d) => fs.existsSync(d));
      if (kept.length > 0) info(`Kept host data of CT ${ctid} (${kept.join(', ')}); pass --purge-data to remove it.`);
    }
    if (changes.length === 0) success(`'delete' workflow completed for CTID ${ctid}: nothing to delete.`);
    else success(`'delete' workflow completed for CTID ${ctid}: ${changes.join('; ')}.`);
    return changes;
  });
}

/**
 * `sync`: the upstream ran the Traefik certificate sync for CTID 102 only;
 * here it runs for every container with the `traefik` feature.
 */
export async function syncContainer(session: LxcSession, ctid: string): Promise<void> {
  const ct = manifestEntry(session, ctid);
  info(`Starting 'sync' workflow for CTID ${ctid}...`);
  if ((ct.features ?? []).includes('traefik')) {
    requireScript(session, TRAEFIK_SYNC_SCRIPT, 'The Traefik certificate sync script');
    await withLock(guestLockPath(session.options.lockFile, ctid), lockOptions(session), async () => {
      const code = await runChild(session, TRAEFIK_SYNC_SCRIPT, [ctid]);
      if (code !== 0) throw new PhoenixError(`Traefik certificate sync failed for CTID ${ctid} (exit ${code}).`);
    });
  } else {
    info(`Nothing to sync for CTID ${ctid}.`);
  }
  info(`'sync' workflow completed for CTID ${ctid}.`);
}

/** `status`: the same table `phoenix status` prints, on stdout. */
export async function statusTable(session: LxcSession, ids: readonly string[]): Promise<string> {
  for (const id of ids) manifestEntry(session, id);
  const graph = guestGraph(session.config);
  const states = new Map(await Promise.all(ids.map(async (id) => [id, await pct.status(id)] as const)));
  return formatStatusTable(graph, session.config, ids, states);
}

// ---------------------------------------------------------------- create-templates

/**
 * `create-templates`: for each `lxc_templates` entry `<file>: {source_ctid}`,
 * make the source container, stop it and dump it into the ISO storage's
 * template cache under that file name. The dump is written next to the
 * target and renamed into place only when complete, so an interrupted dump
 * never leaves a truncated template under the real name.
 */
export async function createTemplates(session: LxcSession): Promise<string[]> {
  info('Starting LXC template creation process...');
  const entries = Object.entries(lxcTemplates(session));
  if (entries.length === 0) {
    info('No LXC templates are defined (.lxc_templates); nothing to do.');
    return [];
  }
  const storage = session.config.hypervisor.proxmox_storage_ids?.fastData_shared_iso;
  if (!storage) throw new PhoenixError('proxmox_storage_ids.fastData_shared_iso is not set; it names the storage templates are written to.');
  const made: string[] = [];
  for (const [file, spec] of entries) {
    const source = String(spec.source_ctid);
    const target = onHost(session.options.hostRoot, await pvesmPath(`${storage}:vztmpl/${file}`));
    if (fs.existsSync(target)) {
      info(`Template '${file}' already exists. Skipping.`);
      continue;
    }
    info(`Creating template '${file}' from CTID ${source}...`);
    await createContainer(session, source, 'create');
    const view = await inspect(session, source);
    if (view.running) await step(`Failed to stop container ${source}`, () => pct.stop(source));
    await dumpInto(source, target, file);
    made.push(file);
    success(`Template '${file}' created.`);
  }
  return made;
}

function lxcTemplates(session: LxcSession): Record<string, { source_ctid: string | number }> {
  const raw = (session.config.lxc as unknown as { lxc_templates?: unknown }).lxc_templates;
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PhoenixError(`${session.config.paths.lxc}: lxc_templates must be an object of <file name>: {source_ctid}`);
  const out: Record<string, { source_ctid: string | number }> = {};
  for (const [file, spec] of Object.entries(raw as Record<string, unknown>)) {
    const id = (spec as { source_ctid?: unknown } | null)?.source_ctid;
    if ((typeof id !== 'string' && typeof id !== 'number') || !/^\d+$/.test(String(id))) {
      throw new PhoenixError(`${session.config.paths.lxc} at /lxc_templates/${file}: expected {"source_ctid": "<id>"}`);
    }
    out[file] = { source_ctid: id };
  }
  return out;
}

async function dumpInto(source: string, target: string, file: string): Promise<void> {
  const compress = file.endsWith('.tar.zst') ? 'zstd' : file.endsWith('.tar.lzo') ? 'lzo' : 'gzip';
  const dumpDir = path.join(path.dirname(target), `.phoenix-dump-${source}`);
  if (!isDryRun()) fs.mkdirSync(dumpDir, { recursive: true, mode: 0o700 });
  try {
    await step(`Failed to create template ${file}`, () => run({ cmd: 'vzdump', args: [source, '--mode', 'stop', '--compress', compress, '--dumpdir', dumpDir], timeoutMs: 0 }));
    if (isDryRun()) {
      info(`DRY-RUN: would move the dump to ${target}`);
      return;
    }
    const dump = fs.readdirSync(dumpDir).find((f) => f.startsWith(`vzdump-lxc-${source}-`) && !f.endsWith('.log'));
    if (!dump) throw new PhoenixError(`vzdump left no archive in ${dumpDir}`);
    fs.renameSync(path.join(dumpDir, dump), target);
  } finally {
    if (!isDryRun()) fs.rmSync(dumpDir, { recursive: true, force: true });
  }
}
