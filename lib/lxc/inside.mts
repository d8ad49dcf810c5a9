// The steps Proxmox cannot answer for: features, the application script and
// health checks, kept in the lifecycle record (record.mts) so a run that
// failed half-way resumes where it stopped and an unchanged container runs
// none of them again.

import { type GuestView, type LxcSession, childEnvironment, featureScript, runChild, scriptExists } from './session.mts';
import { resolveScript } from '../core/bridge.mts';
import { exitCodeFor } from '../core/errors.mts';
import { reportFeature } from '../guest/feature-plan.mts';
import { type LifecycleRecord, writeRecord } from './record.mts';
import { type LxcConfig } from '../config/types.mts';
import { PhoenixError } from '../core/errors.mts';
import { debug, info, success } from '../core/log.mts';
import { healthScript, runProbe } from './health.mts';
import { isDryRun } from '../core/context.mts';
import { runApplicationScript } from './appscript.mts';

// ---------------------------------------------------------------- inside the container

export async function applyFeatures(session: LxcSession, ctid: string, ct: LxcConfig, record: LifecycleRecord, changes: string[]): Promise<void> {
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
    const code = await applyFeature(session, ctid, ct, feature);
    if (code !== 0) throw new PhoenixError(`Feature script '${feature}' failed for CTID ${ctid} (exit ${code}).`);
    record.features.push(feature);
    saveRecord(session, record);
    changes.push(`feature ${feature}`);
  }
}

/**
 * One feature: a port runs in-process as a plan (check, apply what is
 * missing, verify; a dry-run prints the plan), a bash copy as a child
 * script. Returns the exit status; a port's own error is kept as the cause.
 */
async function applyFeature(session: LxcSession, ctid: string, ct: LxcConfig, feature: string): Promise<number> {
  const name = featureScript(feature);
  const script = resolveScript(name, { legacyDir: session.options.legacyDir, useLegacy: session.options.useLegacy });
  const { hasPort, loadFeature } = await import('../features/index.mts');
  if (script.kind !== 'port' || !hasPort('lxc', feature)) {
    // The second argument is always passed, even empty, as the feature scripts expect.
    return runChild(session, name, [ctid, ct.bootstrap_ca_url ?? '']);
  }
  if (isDryRun() && session.assumed.has(ctid)) {
    // The container is only assumed (created or started by this dry-run): nothing can be asked of it.
    info(`DRY-RUN: would apply ${feature} to CT ${ctid} once it runs`);
    return 0;
  }
  const install = await loadFeature('lxc', feature);
  if (!install) return runChild(session, name, [ctid, ct.bootstrap_ca_url ?? '']);
  const caUrl = ct.bootstrap_ca_url?.trim();
  try {
    reportFeature(await install(ctid, { config: session.config, options: session.options, ...(caUrl ? { bootstrapCaUrl: caUrl } : {}) }));
    return 0;
  } catch (err) {
    if (!(err instanceof PhoenixError)) throw err;
    const code = exitCodeFor(err);
    throw new PhoenixError(`Feature script '${feature}' failed for CTID ${ctid} (exit ${code}): ${err.message}`, { cause: err, ...(err.hint === undefined ? {} : { hint: err.hint }) });
  }
}

export function appScriptDone(record: LifecycleRecord, name: string, digest: string | undefined): boolean {
  return record.application_script?.name === name && record.application_script.digest === digest;
}

export async function applicationScript(session: LxcSession, ctid: string, ct: LxcConfig, digest: string | undefined, record: LifecycleRecord, changes: string[]): Promise<void> {
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

export function hasHealthChecks(ct: LxcConfig): boolean {
  return (ct.features ?? []).includes('nvidia') || (ct.health_checks ?? []).length > 0 || ct.health_check !== undefined;
}

export async function healthChecks(session: LxcSession, ctid: string, ct: LxcConfig, view: GuestView, record: LifecycleRecord, changes: string[]): Promise<void> {
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
