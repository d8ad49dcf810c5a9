// The Step-CA container (CT 103 in the example manifests), brought to a
// working CA from the host: its STEPPATH private, the CA name resolvable
// inside it, the CA initialised once with passwords made on the host, the
// step-ca service (installed by the step_ca feature) running and answering
// its health check, one ACME provisioner, the root certificate copied to the
// host, and a ready marker that exists only while the CA answered.
//
// Secrets: the CA password is generated here and exists only in the CA's
// STEPPATH (ca_password.txt, 0600), where step-ca.service reads it. The
// provisioner password lives on the host only (step_ca.provisioner_password_file,
// 0600); it enters the container once, as a 0600 file that `step ca init`
// reads and that is removed right after. Both travel by `pct push` from
// 0600 files in a private temporary directory, never in an argument, a log
// line or a world-readable file, and ca.json is never printed.
//
// Every name, address and path comes from the manifests (`step_ca.*` of the
// hypervisor config, the domain, the CA container's addresses and mounts,
// the addresses other guests reach the CA by); the bash hard-coded them all.
// Where the CA container still mounts the bash CA's shared directory, the
// public files the bash scripts read there are kept up to date
// (lib/pki/shared-dir.mts).

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { addSecret } from '../core/redact.mts';
import { sleep, type CommandResult } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import { ensureDir, writeFileAtomic } from '../core/fs.mts';
import { debug, info, warn } from '../core/log.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { probe, pushContent, readGuestFile, requireRunning, runGuestCommand, type FeatureContext } from '../guest/container.mts';
import { parseRootCa, STEP_CA_PORT, STEP_CA_ROOT_CERT, STEP_CA_STEPPATH, syncRootCaFromCa } from '../guest/root-ca.mts';
import { CA_CONFIG, CA_PASSWORD_FILE, SERVICE, UNIT_PATH } from '../features/lxc/step-ca.mts';
import { clearSharedReady, writeSharedFiles, writeSharedReady } from './shared-dir.mts';
import type { StepCaSettings } from './settings.mts';

export { caDnsNames, DEFAULT_CA_NAME, DEFAULT_PROVISIONER_NAME, DEFAULT_PROVISIONER_PASSWORD_FILE, stepCaSettings, type StepCaSettings } from './settings.mts';

/** The ACME provisioner's name: Traefik's resolver reaches it at /acme/acme/directory. */
export const ACME_PROVISIONER = 'acme';
export const ACME_CHALLENGES = ['http-01', 'tls-alpn-01'] as const;
/** The CA password inside the CA container, where step-ca.service reads it. */
export const CA_PASSWORD_PATH = `${STEP_CA_STEPPATH}/${CA_PASSWORD_FILE}`;
/**
 * Exists only while the CA last passed its health check: written after a
 * passing check, removed when one fails. Holds the CA URL and the root
 * fingerprint (nothing secret).
 */
export const READY_MARKER = `${STEP_CA_STEPPATH}/ca.ready`;
/** The intermediate certificate `step ca init` leaves under STEPPATH (the bash's bundle starts with it). */
export const STEP_CA_INTERMEDIATE_CERT = `${STEP_CA_STEPPATH}/certs/intermediate_ca.crt`;
/** The provisioner password's short stay in the container: this prefix plus a random suffix, in root's home. */
export const PROVISIONER_TEMP_PREFIX = '.phoenix-provisioner-password.';
/**
 * What `step ca init` creates under STEPPATH. While config/ca.json is absent
 * these are the remains of an init that never finished (a run killed in the
 * middle): no certificate was ever issued from them, so they are removed
 * before the next init instead of blocking it.
 */
export const INIT_OUTPUTS = ['certs', 'secrets', 'config', 'db', 'templates'] as const;
/** The longest wait for a healthy CA, in seconds; PHOENIX_GUEST_TIMEOUT can only shorten it. */
export const HEALTH_WAIT_CAP_SECONDS = 120;
/** One `step` call inside the container (init generates keys; the rest are quick). */
const STEP_INIT_TIMEOUT_MS = 5 * 60_000;
const STEP_CALL_TIMEOUT_MS = 60_000;
const SYSTEMCTL_TIMEOUT_MS = 120_000;

/** `step …` inside the CA container, with STEPPATH explicit (pct exec does not promise a HOME). */
export function stepArgv(...args: string[]): string[] {
  return ['env', `STEPPATH=${STEP_CA_STEPPATH}`, 'step', ...args];
}

/** The `step ca init` argument vector: everything from the settings, the passwords as file paths. */
export function initArgv(settings: StepCaSettings, provisionerPasswordPath: string): string[] {
  return stepArgv(
    'ca',
    'init',
    '--name',
    settings.name,
    ...settings.dnsNames.flatMap((name) => ['--dns', name]),
    '--address',
    `:${STEP_CA_PORT}`,
    '--provisioner',
    settings.provisioner,
    '--deployment-type',
    'standalone',
    '--password-file',
    CA_PASSWORD_PATH,
    '--provisioner-password-file',
    provisionerPasswordPath,
    '--with-ca-url',
    settings.caUrl,
  );
}

export interface StepCaResult {
  ctid: string;
  /** One line per change made (or planned, in a dry-run). */
  changes: string[];
  /** The root fingerprint, when the CA exists (not in a dry-run of a first initialisation). */
  fingerprint?: string;
}

interface Run {
  ctid: string;
  settings: StepCaSettings;
  options: PhoenixOptions;
  context: FeatureContext;
  changes: string[];
}

/** Bring the CA container to a working, healthy CA; idempotent. */
export async function ensureStepCa(context: FeatureContext, settings: StepCaSettings): Promise<StepCaResult> {
  const run: Run = { ctid: settings.ctid, settings, options: context.options, context, changes: [] };
  const { ctid, changes } = run;
  for (const w of settings.warnings) warn(w);
  await requireRunning(ctid);
  if (!(await pct.test(ctid, '-f', UNIT_PATH))) {
    throw new PhoenixError(`${UNIT_PATH} is missing in CT ${ctid}`, { hint: `the step_ca feature installs step-ca and its unit; list "step_ca" in the features of CT ${ctid}` });
  }

  await removeStrayProvisionerPasswords(run);
  await ensureStepPath(run);
  await ensureHostsEntries(run);

  const initialised = await pct.test(ctid, '-f', CA_CONFIG);
  if (initialised) {
    info(`the CA in CT ${ctid} is already initialised (${CA_CONFIG})`);
    await checkExistingSecrets(run);
  } else {
    await removeUnfinishedInit(run);
    await initialiseCa(run);
  }

  // After `step ca init` the unit's start condition (ca.json) holds for the first time.
  let serviceChanged = false;
  if (!initialised) {
    await systemctl(run, ['restart', SERVICE], 'starting step-ca on its new CA');
    changes.push('started step-ca');
    serviceChanged = true;
  } else if ((await probe(ctid, ['systemctl', 'is-active', '--quiet', SERVICE])).code !== 0) {
    await systemctl(run, ['start', SERVICE], 'starting step-ca');
    changes.push('started step-ca');
    serviceChanged = true;
  }
  if ((await probe(ctid, ['systemctl', 'is-enabled', '--quiet', SERVICE])).code !== 0) {
    await systemctl(run, ['enable', SERVICE], 'enabling step-ca');
    changes.push('enabled step-ca');
  }

  if (isDryRun() && serviceChanged) {
    // Nothing was started, so there is nothing to ask yet; say what would follow.
    const shared = settings.sharedDir ? `, write the public CA files for the bash scripts into ${settings.sharedDir}` : '';
    info(`DRY-RUN: would wait for step-ca in CT ${ctid} to pass 'step ca health', add the ACME provisioner '${ACME_PROVISIONER}' if missing, copy the root CA to ${settings.rootCaFile}${shared} and write ${READY_MARKER}`);
    changes.push(`add the ACME provisioner '${ACME_PROVISIONER}' if missing`, `copy the root CA to ${settings.rootCaFile}`, ...(settings.sharedDir ? [`write the public CA files into ${settings.sharedDir}`] : []), `write ${READY_MARKER}`);
    return { ctid, changes };
  }

  await requireHealthy(run);
  if (await ensureAcmeProvisioner(run)) {
    // ca.json changed; step-ca reads it only when it starts.
    await systemctl(run, ['restart', SERVICE], 'restarting step-ca for its new provisioner');
    changes.push('restarted step-ca');
    if (isDryRun()) return { ctid, changes };
    await requireHealthy(run);
  }

  const synced = await syncRootCaFromCa(run.context, ctid);
  if (synced === 'created' || synced === 'changed') changes.push(`copied the root CA to ${settings.rootCaFile}`);
  const rootPem = isDryRun() || synced === 'absent' ? await readGuestFile(ctid, STEP_CA_ROOT_CERT) : fs.readFileSync(settings.rootCaFile, 'utf8');
  if (rootPem === undefined) throw new PhoenixError(`CT ${ctid} has a CA but no ${STEP_CA_ROOT_CERT}`);
  const { fingerprint } = await parseRootCa(rootPem, `${STEP_CA_ROOT_CERT} of CT ${ctid}`);
  if (settings.sharedDir) {
    const intermediate = await readGuestFile(ctid, STEP_CA_INTERMEDIATE_CERT);
    if (intermediate === undefined) throw new PhoenixError(`CT ${ctid} has a CA but no ${STEP_CA_INTERMEDIATE_CERT}`);
    changes.push(...writeSharedFiles(settings.sharedDir, rootPem, intermediate, fingerprint));
  }
  await writeReadyMarker(run, fingerprint);
  return { ctid, changes, fingerprint };
}

// ---------------------------------------------------------------- STEPPATH and names

/**
 * STEPPATH, mode 0700. When it is a bind mount the host directory is the
 * one to fix (lxc-manager creates it 0755 and leaves its mode alone);
 * otherwise it is made inside the container.
 */
async function ensureStepPath(run: Run): Promise<void> {
  const { ctid, settings, changes } = run;
  const hostDir = settings.hostStepDir;
  if (hostDir !== undefined && fs.existsSync(hostDir) && fs.statSync(hostDir).isDirectory()) {
    if (ensureDir(hostDir, 0o700) !== 'unchanged') changes.push(`made ${hostDir} (STEPPATH of CT ${ctid}) private (0700)`);
    return;
  }
  if (!(await pct.test(ctid, '-d', STEP_CA_STEPPATH))) {
    await runGuestCommand(ctid, ['mkdir', '-p', STEP_CA_STEPPATH], step('creating STEPPATH'));
    await runGuestCommand(ctid, ['chmod', '0700', STEP_CA_STEPPATH], step('making STEPPATH private'));
    changes.push(`created ${STEP_CA_STEPPATH} (0700)`);
    return;
  }
  const mode = (await probe(ctid, ['stat', '-c', '%a', STEP_CA_STEPPATH])).stdout.trim();
  if (mode === '700') return;
  // An unreadable answer counts as wrong: the directory holds the CA keys.
  await runGuestCommand(ctid, ['chmod', '0700', STEP_CA_STEPPATH], step('making STEPPATH private'));
  changes.push(`made ${STEP_CA_STEPPATH} private (0700${/^[0-7]{3,4}$/.test(mode) ? `, was ${mode}` : ''})`);
}

function step(label: string): { feature: string; label: string } {
  return { feature: 'step-ca', label };
}

/** Whether /etc/hosts text maps `name` (comments ignored). */
export function hostsHasName(hosts: string, name: string): boolean {
  return hosts.split('\n').some((line) => {
    const words = line.replace(/#.*$/, '').trim().split(/\s+/);
    return words.length > 1 && words.slice(1).some((w) => w.toLowerCase() === name.toLowerCase());
  });
}

/** The CA's own names resolve to loopback inside its container (the health check uses the CA URL). */
async function ensureHostsEntries(run: Run): Promise<void> {
  const { ctid, settings, changes } = run;
  if (settings.localNames.length === 0) return;
  const current = (await readGuestFile(ctid, '/etc/hosts')) ?? '';
  const missing = settings.localNames.filter((name) => !hostsHasName(current, name));
  if (missing.length === 0) return;
  const text = `${current}${current === '' || current.endsWith('\n') ? '' : '\n'}${missing.map((name) => `127.0.0.1 ${name}\n`).join('')}`;
  await pushContent(ctid, '/etc/hosts', text, { ...step('adding the CA name to /etc/hosts'), perms: '0644' });
  changes.push(`mapped ${missing.join(', ')} to 127.0.0.1 in /etc/hosts`);
}

// ---------------------------------------------------------------- secrets and init

/**
 * The provisioner password from its host file (made private when it is
 * not), created (0600, directory 0700) when missing and `create` is set;
 * undefined when missing and not to be created.
 */
function ensureProvisionerPassword(run: Run, create: true): string;
function ensureProvisionerPassword(run: Run, create: boolean): string | undefined;
function ensureProvisionerPassword(run: Run, create: boolean): string | undefined {
  const file = run.settings.provisionerPasswordFile;
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PhoenixError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (text !== undefined) {
    const password = text.replace(/[\r\n]+$/, '');
    if (password === '') throw new PhoenixError(`${file} is empty`, { hint: 'remove it to have a new provisioner password generated, or put the password in it' });
    addSecret(password);
    const mode = fs.statSync(file).mode & 0o777;
    if (mode !== 0o600) {
      writeFileAtomic(file, text, { mode: 0o600 });
      run.changes.push(`made ${file} private (0600, was ${mode.toString(8)})`);
    }
    return password;
  }
  if (!create) return undefined;
  const password = crypto.randomBytes(32).toString('base64');
  addSecret(password);
  const dir = path.dirname(file);
  if (!isDryRun() && !fs.existsSync(dir)) {
    // Only the secrets directory itself is private; its parents stay searchable (the root CA copy lives beside it).
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
    ensureDir(dir, 0o700);
  }
  writeFileAtomic(file, `${password}\n`, { mode: 0o600, dirMode: 0o700 });
  run.changes.push(`generated the provisioner password in ${file} (0600)`);
  return password;
}

/**
 * `step ca init` in the container. The CA password is made here and pushed
 * to its one home; the provisioner password comes from the host file and
 * is in the container only while init runs.
 */
async function initialiseCa(run: Run): Promise<void> {
  const { ctid, settings, changes } = run;
  const provisionerPassword = ensureProvisionerPassword(run, true);
  const caPassword = crypto.randomBytes(32).toString('base64');
  addSecret(caPassword);
  const guestTemp = `/root/${PROVISIONER_TEMP_PREFIX}${crypto.randomBytes(6).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-stepca-'));
  try {
    fs.chmodSync(dir, 0o700);
    const caFile = path.join(dir, 'ca_password.txt');
    const provisionerFile = path.join(dir, 'provisioner_password');
    fs.writeFileSync(caFile, `${caPassword}\n`, { mode: 0o600 });
    fs.writeFileSync(provisionerFile, `${provisionerPassword}\n`, { mode: 0o600 });
    info(`initialising the CA '${settings.name}' in CT ${ctid} (names: ${settings.dnsNames.join(', ')}; provisioner ${settings.provisioner})`);
    await pushSecret(ctid, caFile, CA_PASSWORD_PATH, 'placing the CA password');
    changes.push(`generated the CA password in ${CA_PASSWORD_PATH} (0600)`);
    const note = pendingCopyNote(run.options.hostRoot, ctid);
    if (!isDryRun()) writeFileAtomic(note, `${guestTemp}\n`, { mode: 0o600, dirMode: 0o700 });
    await pushSecret(ctid, provisionerFile, guestTemp, 'handing the provisioner password to step ca init');
    try {
      await runGuestCommand(ctid, initArgv(settings, guestTemp), { ...step('step ca init'), timeoutMs: STEP_INIT_TIMEOUT_MS });
    } finally {
      const removed = await pct.exec(ctid, ['rm', '-f', guestTemp], { allowFailure: true, quiet: true }).catch((err: unknown) => err as Error);
      if (removed instanceof Error || removed.code !== 0) warn(`could not remove ${guestTemp} in CT ${ctid}; the next run removes it (it holds the provisioner password)`);
      else if (!isDryRun()) fs.rmSync(note, { force: true });
    }
    changes.push(`initialised the CA '${settings.name}' (provisioner ${settings.provisioner})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where a run notes the guest path of the provisioner password copy it is
 * about to hand to `step ca init`, removed once the copy is gone. A note
 * still there means a run was killed in between: the next run removes the
 * copy it names (the host decides, so no listing of the container is needed).
 */
export function pendingCopyNote(hostRoot: string, ctid: string): string {
  return path.join(hostRoot, 'var', 'lib', 'phoenix', 'step-ca', `${ctid}.provisioner-copy`);
}

async function removeStrayProvisionerPasswords(run: Run): Promise<void> {
  const { ctid, changes } = run;
  const note = pendingCopyNote(run.options.hostRoot, ctid);
  let named: string;
  try {
    named = fs.readFileSync(note, 'utf8').trim();
  } catch {
    return;
  }
  const valid = named.startsWith(`/root/${PROVISIONER_TEMP_PREFIX}`) && /^[A-Za-z0-9/._-]+$/.test(named) && !named.includes('..');
  if (valid && (await pct.test(ctid, '-e', named))) {
    warn(`removing ${named} in CT ${ctid}: a copy of the provisioner password left by an interrupted CA initialisation`);
    await runGuestCommand(ctid, ['rm', '-f', named], step('removing a stray provisioner password copy'));
    changes.push(`removed a stray provisioner password copy (${named})`);
  }
  if (!isDryRun()) fs.rmSync(note, { force: true });
}

/** The remains of an init that did not finish (no ca.json) go before a new init. */
async function removeUnfinishedInit(run: Run): Promise<void> {
  const { ctid, changes } = run;
  // stat names what exists and complains about the rest: one read-only call.
  const listed = await probe(ctid, ['stat', '-c', '%n', ...INIT_OUTPUTS.map((name) => `${STEP_CA_STEPPATH}/${name}`)]);
  const present = new Set(listed.stdout.split('\n').map((n) => n.trim()));
  const leftovers = INIT_OUTPUTS.filter((name) => present.has(`${STEP_CA_STEPPATH}/${name}`));
  if (leftovers.length === 0) return;
  const paths = leftovers.map((name) => `${STEP_CA_STEPPATH}/${name}`);
  warn(`CT ${ctid} has the remains of a CA initialisation that did not finish (${paths.join(', ')}, but no ${CA_CONFIG}); removing them and initialising again`);
  await runGuestCommand(ctid, ['rm', '-rf', ...paths], step('removing an unfinished CA initialisation'));
  changes.push(`removed an unfinished CA initialisation (${leftovers.join(', ')})`);
}

async function pushSecret(ctid: string, hostFile: string, guestPath: string, label: string): Promise<void> {
  try {
    await pct.push(ctid, hostFile, guestPath, { perms: '0600' });
  } catch (err) {
    throw new PhoenixError(`step-ca: ${label} failed in CT ${ctid}: ${(err as Error).message}`, { cause: err });
  }
}

/** An initialised CA cannot start without its password; the host-side issuer needs the provisioner password. */
async function checkExistingSecrets(run: Run): Promise<void> {
  const { ctid, settings } = run;
  if (!(await pct.test(ctid, '-s', CA_PASSWORD_PATH))) {
    throw new PhoenixError(`CT ${ctid} has a CA (${CA_CONFIG}) but no ${CA_PASSWORD_PATH}, so step-ca cannot start`, {
      hint: `restore ${CA_PASSWORD_FILE} from a backup of the CA directory (the CA keys are encrypted with it), or move ${STEP_CA_STEPPATH} aside to have a new CA made`,
    });
  }
  if (ensureProvisionerPassword(run, false) === undefined) {
    warn(`${settings.provisionerPasswordFile} does not exist: the CA was initialised with a provisioner password this host no longer has, so certificate-renewal-manager cannot issue certificates until it is restored`);
  }
}

// ---------------------------------------------------------------- service and health

async function systemctl(run: Run, args: string[], label: string): Promise<void> {
  await runGuestCommand(run.ctid, ['systemctl', ...args], { ...step(label), timeoutMs: SYSTEMCTL_TIMEOUT_MS });
}

function healthArgv(settings: StepCaSettings): string[] {
  return stepArgv('ca', 'health', '--ca-url', settings.caUrl, '--root', STEP_CA_ROOT_CERT);
}

function lastLines(result: CommandResult, n = 3): string {
  return (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-n).join(' | ');
}

/**
 * Wait for `step ca health` to answer ok, polling every PHOENIX_POLL_INTERVAL_MS
 * for at most HEALTH_WAIT_CAP_SECONDS (less when PHOENIX_GUEST_TIMEOUT is
 * lower). On failure the ready marker goes and the error says what the
 * last check answered; the unit's status and journal tail are logged.
 */
async function requireHealthy(run: Run): Promise<void> {
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

interface ListedProvisioner {
  type?: string;
  name?: string;
}

export function parseProvisionerList(stdout: string): ListedProvisioner[] {
  const parsed = JSON.parse(stdout) as unknown;
  if (!Array.isArray(parsed)) throw new Error('not a JSON array');
  return parsed as ListedProvisioner[];
}

/** Add the ACME provisioner unless the CA lists it; returns whether ca.json changed. */
async function ensureAcmeProvisioner(run: Run): Promise<boolean> {
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

async function writeReadyMarker(run: Run, fingerprint: string): Promise<void> {
  const { ctid, settings, changes } = run;
  const text = readyMarkerText(settings.caUrl, fingerprint);
  // The bash scripts wait for the copy in the shared directory (they only test that it exists).
  if (settings.sharedDir) changes.push(...writeSharedReady(settings.sharedDir, text));
  if ((await readGuestFile(ctid, READY_MARKER)) === text) return;
  await pushContent(ctid, READY_MARKER, text, { ...step('writing the ready marker'), perms: '0644' });
  changes.push(`wrote ${READY_MARKER}`);
}

async function clearReadyMarker(run: Run): Promise<void> {
  const shared = run.settings.sharedDir;
  if (shared && clearSharedReady(shared)) warn(`removed the ready marker in ${shared}: the CA does not answer`);
  if (!(await pct.test(run.ctid, '-e', READY_MARKER))) return;
  const removed = await pct.exec(run.ctid, ['rm', '-f', READY_MARKER], { allowFailure: true, quiet: true });
  if (removed.code === 0) warn(`removed ${READY_MARKER} in CT ${run.ctid}: the CA does not answer`);
  else warn(`could not remove ${READY_MARKER} in CT ${run.ctid}: ${lastLines(removed)}`);
}
