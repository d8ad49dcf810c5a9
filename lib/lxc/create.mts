// The create sequence, in the bash's order, as one idempotent pass per
// container: define it (define.mts), configure, start, work inside it
// (inside.mts), snapshots, template. Every step first looks, then changes
// only what differs, and says what it changed.

import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { ABSENT, CERTIFICATE_SCRIPT, FIREWALL_SCRIPT, type GuestView, type LxcSession, SNAPSHOT_FINAL_FORM, SNAPSHOT_PRE_CONFIGURED, featureScript, inspect, lockOptions, manifestEntry, manifestValues, requireScript, runChild, snapshotsEnabled, step } from './session.mts';
import { type ConfigPlan, checkManifestValues, formatRawLine, isEmptyPlan, parseProps, planConfig } from './plan.mts';
import { type LifecycleRecord, emptyRecord, readRecord, removeRecord } from './record.mts';
import { type LxcConfig } from '../config/types.mts';
import { PhoenixError } from '../core/errors.mts';
import { appScriptDone, applicationScript, applyFeatures, hasHealthChecks, healthChecks } from './inside.mts';
import { applyHostDirs, planHostDirs } from '../guest/hostdirs.mts';
import { applyRawPlan } from './conf.mts';
import { debug, info, success, warn } from '../core/log.mts';
import { define } from './define.mts';
import { finishSnapshotTask, isHalfMade, isSnapshotTaskUnfinished, removeHalfMadeGuest } from '../pve/half-made.mts';
import { grantIdRanges } from './subids.mts';
import { guestLockPath, withLock } from '../guest/locks.mts';
import { certificateManagerFound, hostStep } from '../guest/manager.mts';
import { healthScript } from './health.mts';
import { isDryRun } from '../core/context.mts';
import { resolveAppScript, scriptDigest } from './appscript.mts';
import { sleep } from '../core/runner.mts';

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
    view = await define(session, ctid, ct, changes, (source, wait) => createContainer(session, source, 'create', wait));
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

async function certificateRun(session: LxcSession): Promise<void> {
  if (session.certificatesDone) return;
  session.certificatesDone = true;
  if (!certificateManagerFound(session)) return;
  info('Ensuring the certificate warehouse is up to date...');
  await hostStep(session, 'certificate', async () => {
    const code = await runChild(session, CERTIFICATE_SCRIPT, []);
    if (code !== 0) throw new PhoenixError(`Certificate generation failed (exit ${code}). Aborting create workflow.`);
  });
  success('Certificate warehouse is up to date.');
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

export async function startWithRetries(session: LxcSession, ctid: string): Promise<void> {
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
