// The running CA: step-ca's service, its health check with a bounded wait,
// the ACME provisioner added once, and the ready marker that exists only
// while the CA answered.

import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { sleep, type CommandResult } from '../core/runner.mts';
import { debug, info, warn } from '../core/log.mts';
import { probe, pushContent, readGuestFile, runGuestCommand } from '../guest/container.mts';
import { STEP_CA_ROOT_CERT } from '../guest/root-ca.mts';
import { CA_CONFIG, SERVICE } from '../features/lxc/step-ca.mts';
import { clearSharedReady, writeSharedReady } from './shared-dir.mts';
import type { StepCaSettings } from './settings.mts';
import {
  ACME_PROVISIONER,
  ACME_CHALLENGES,
  READY_MARKER,
  HEALTH_WAIT_CAP_SECONDS,
  STEP_CALL_TIMEOUT_MS,
  SYSTEMCTL_TIMEOUT_MS,
  stepArgv,
  step,
  type Run,
} from './ca-layout.mts';

// ---------------------------------------------------------------- service and health

export async function systemctl(run: Run, args: string[], label: string): Promise<void> {
  await runGuestCommand(run.ctid, ['systemctl', ...args], { ...step(label), timeoutMs: SYSTEMCTL_TIMEOUT_MS });
}

export function healthArgv(settings: StepCaSettings): string[] {
  return stepArgv('ca', 'health', '--ca-url', settings.caUrl, '--root', STEP_CA_ROOT_CERT);
}

export function lastLines(result: CommandResult, n = 3): string {
  return (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-n).join(' | ');
}

/**
 * Wait for `step ca health` to answer ok, polling every PHOENIX_POLL_INTERVAL_MS
 * for at most HEALTH_WAIT_CAP_SECONDS (less when PHOENIX_GUEST_TIMEOUT is
 * lower). On failure the ready marker goes and the error says what the
 * last check answered; the unit's status and journal tail are logged.
 */
export async function requireHealthy(run: Run): Promise<void> {
  const { ctid, settings, options } = run;
  const waitMs = Math.min(options.guestTimeoutSeconds, HEALTH_WAIT_CAP_SECONDS) * 1000;
  const deadline = Date.now() + waitMs;
  let attempt = 0;
  let last: CommandResult | undefined;
  for (;;) {
    attempt += 1;
    last = await pct.exec(ctid, healthArgv(settings), { mutating: false, allowFailure: true, quiet: true, timeoutMs: Math.max(1000, Math.min(STEP_CALL_TIMEOUT_MS, deadline - Date.now())) });
    if (last.code === 0 && /\bok\b/.test(last.stdout)) {
      info(`step-ca in CT ${ctid} answers at ${settings.caUrl} (health ok${attempt > 1 ? ` after ${attempt} checks` : ''})`);
      return;
    }
    if (Date.now() + options.pollIntervalMs > deadline) break;
    debug(`step ca health in CT ${ctid}: ${lastLines(last, 1) || `exit ${last.code}`}; checking again in ${options.pollIntervalMs} ms`);
    await sleep(options.pollIntervalMs);
  }
  await clearReadyMarker(run);
  for (const argv of [['systemctl', 'status', SERVICE, '--no-pager'], ['journalctl', '-u', SERVICE, '-n', '20', '--no-pager']]) {
    const diag = await probe(ctid, argv);
    const text = (diag.stdout || diag.stderr).trim();
    if (text) info(`${argv.join(' ')} in CT ${ctid}:\n${text}`);
  }
  throw new PhoenixError(
    `step-ca in CT ${ctid} did not pass its health check at ${settings.caUrl} within ${Math.round(waitMs / 1000)} s (${attempt} checks); last answer: ${lastLines(last) || `exit ${last.code}`}`,
    { hint: `look at 'journalctl -u ${SERVICE}' in CT ${ctid}; ${READY_MARKER} is removed until the CA answers` },
  );
}

// ---------------------------------------------------------------- ACME provisioner

export interface ListedProvisioner {
  type?: string;
  name?: string;
}

export function parseProvisionerList(stdout: string): ListedProvisioner[] {
  const parsed = JSON.parse(stdout) as unknown;
  if (!Array.isArray(parsed)) throw new Error('not a JSON array');
  return parsed as ListedProvisioner[];
}

/** Add the ACME provisioner unless the CA lists it; returns whether ca.json changed. */
export async function ensureAcmeProvisioner(run: Run): Promise<boolean> {
  const { ctid, settings, changes } = run;
  const listed = await pct.exec(ctid, stepArgv('ca', 'provisioner', 'list', '--ca-url', settings.caUrl, '--root', STEP_CA_ROOT_CERT), {
    mutating: false,
    allowFailure: true,
    quiet: true,
    timeoutMs: STEP_CALL_TIMEOUT_MS,
  });
  // The bash meant to treat a failed list as "no provisioners" (and never could); a failed list is an error here.
  if (listed.code !== 0) throw new PhoenixError(`cannot list the provisioners of the CA in CT ${ctid}: ${lastLines(listed) || `exit ${listed.code}`}`);
  let provisioners: ListedProvisioner[];
  try {
    provisioners = parseProvisionerList(listed.stdout);
  } catch (err) {
    throw new PhoenixError(`'step ca provisioner list' in CT ${ctid} did not print a JSON array: ${(err as Error).message}`);
  }
  const existing = provisioners.find((p) => p.name === ACME_PROVISIONER);
  if (existing) {
    if ((existing.type ?? '').toUpperCase() !== 'ACME') {
      throw new PhoenixError(`the CA in CT ${ctid} has a provisioner named '${ACME_PROVISIONER}' of type ${existing.type ?? 'unknown'}, not ACME`, { hint: `remove it with 'step ca provisioner remove ${ACME_PROVISIONER}' in CT ${ctid}` });
    }
    debug(`the CA in CT ${ctid} has its ACME provisioner '${ACME_PROVISIONER}'`);
    return false;
  }
  await runGuestCommand(
    ctid,
    stepArgv('ca', 'provisioner', 'add', ACME_PROVISIONER, '--type', 'ACME', ...ACME_CHALLENGES.flatMap((c) => ['--challenge', c]), '--ca-config', CA_CONFIG),
    { ...step(`adding the ACME provisioner '${ACME_PROVISIONER}'`), timeoutMs: STEP_CALL_TIMEOUT_MS },
  );
  changes.push(`added the ACME provisioner '${ACME_PROVISIONER}' (${ACME_CHALLENGES.join(', ')})`);
  return true;
}

// ---------------------------------------------------------------- ready marker

export function readyMarkerText(caUrl: string, fingerprint: string): string {
  return `ca_url=${caUrl}\nroot_fingerprint=${fingerprint}\n`;
}

export async function writeReadyMarker(run: Run, fingerprint: string): Promise<void> {
  const { ctid, settings, changes } = run;
  const text = readyMarkerText(settings.caUrl, fingerprint);
  // The bash scripts wait for the copy in the shared directory (they only test that it exists).
  if (settings.sharedDir) changes.push(...writeSharedReady(settings.sharedDir, text));
  if ((await readGuestFile(ctid, READY_MARKER)) === text) return;
  await pushContent(ctid, READY_MARKER, text, { ...step('writing the ready marker'), perms: '0644' });
  changes.push(`wrote ${READY_MARKER}`);
}

export async function clearReadyMarker(run: Run): Promise<void> {
  const shared = run.settings.sharedDir;
  if (shared && clearSharedReady(shared)) warn(`removed the ready marker in ${shared}: the CA does not answer`);
  if (!(await pct.test(run.ctid, '-e', READY_MARKER))) return;
  const removed = await pct.exec(run.ctid, ['rm', '-f', READY_MARKER], { allowFailure: true, quiet: true });
  if (removed.code === 0) warn(`removed ${READY_MARKER} in CT ${run.ctid}: the CA does not answer`);
  else warn(`could not remove ${READY_MARKER} in CT ${run.ctid}: ${lastLines(removed)}`);
}
