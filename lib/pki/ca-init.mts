// The CA's first steps: STEPPATH private, the CA names resolvable inside
// the container, the passwords made on the host and handed over in 0600
// files, `step ca init` run once (its unfinished remains removed first).

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pct from '../pve/pct.mts';
import { PhoenixError } from '../core/errors.mts';
import { addSecret } from '../core/redact.mts';
import { isDryRun } from '../core/context.mts';
import { ensureDir, writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import { probe, pushContent, readGuestFile, runGuestCommand } from '../guest/container.mts';
import { STEP_CA_STEPPATH } from '../guest/root-ca.mts';
import { CA_CONFIG, CA_PASSWORD_FILE } from '../features/lxc/step-ca.mts';
import {
  
  CA_PASSWORD_PATH,
  PROVISIONER_TEMP_PREFIX,
  INIT_OUTPUTS,
  STEP_INIT_TIMEOUT_MS,
  initArgv,
  step,
  type Run,
} from './ca-layout.mts';

// ---------------------------------------------------------------- STEPPATH and names

/**
 * STEPPATH, mode 0700. When it is a bind mount the host directory is the
 * one to fix (lxc-manager creates it 0755 and leaves its mode alone);
 * otherwise it is made inside the container.
 */
export async function ensureStepPath(run: Run): Promise<void> {
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

/** Whether /etc/hosts text maps `name` (comments ignored). */
export function hostsHasName(hosts: string, name: string): boolean {
  return hosts.split('\n').some((line) => {
    const words = line.replace(/#.*$/, '').trim().split(/\s+/);
    return words.length > 1 && words.slice(1).some((w) => w.toLowerCase() === name.toLowerCase());
  });
}

/** The CA's own names resolve to loopback inside its container (the health check uses the CA URL). */
export async function ensureHostsEntries(run: Run): Promise<void> {
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
export function ensureProvisionerPassword(run: Run, create: true): string;
export function ensureProvisionerPassword(run: Run, create: boolean): string | undefined;
export function ensureProvisionerPassword(run: Run, create: boolean): string | undefined {
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
export async function initialiseCa(run: Run): Promise<void> {
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

export async function removeStrayProvisionerPasswords(run: Run): Promise<void> {
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
export async function removeUnfinishedInit(run: Run): Promise<void> {
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

export async function pushSecret(ctid: string, hostFile: string, guestPath: string, label: string): Promise<void> {
  try {
    await pct.push(ctid, hostFile, guestPath, { perms: '0600' });
  } catch (err) {
    throw new PhoenixError(`step-ca: ${label} failed in CT ${ctid}: ${(err as Error).message}`, { cause: err });
  }
}

/** An initialised CA cannot start without its password; the host-side issuer needs the provisioner password. */
export async function checkExistingSecrets(run: Run): Promise<void> {
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
