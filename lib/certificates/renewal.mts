// One run of the certificate renewal manager over the whole manifest:
//
//   1. check     read every entry's files and decide from the certificate
//                itself whether it must be renewed (x509.mts);
//   2. issue     renew those through step on the host (issue.mts);
//   3. deliver   unless --generate-only: into the guests, post-renewal
//                commands, one reload per TLS service (deliver.mts), for
//                every entry whose certificate is not yet where it is used;
//   4. report    one line per entry; the run fails when any entry failed,
//                after every other entry was still processed, so one broken
//                entry never holds back the renewal of the others.

import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import * as pct from '../pve/pct.mts';
import { toolFor } from '../pve/guest-tool.mts';
import { query } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import { addSecret } from '../core/redact.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, warn, success } from '../core/log.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { ensureHostRootCa } from '../hypervisor/host.mts';
import { buildModel, type CaSettings, type CertificatePlan, type RenewalModel } from './manifest.mts';
import { inspect, formatDuration } from './x509.mts';
import { issueCertificate } from './issue.mts';
import { OwnerResolver } from './owners.mts';
import { managedServices, pushFiles, pushIntoGuest, reloadService, removeHandover, runPostCommand, verifyInGuest, type ServiceReload } from './deliver.mts';
import { deliveryDigest, readDeliveryState, stateKey, writeDeliveryState, type DeliveryState } from './state.mts';
import type { EntryReport, RenewalReport } from './summary.mts';

export interface RenewalFlags {
  /** Renew every entry whatever its state. */
  force: boolean;
  /** Issue only: no pushes, no post-renewal commands, no reloads. */
  generateOnly: boolean;
}

/** How long `step ca health` may take before the CA counts as unreachable. */
const HEALTH_TIMEOUT_MS = 30_000;

interface Work {
  plan: CertificatePlan;
  report: EntryReport;
  renew: string[];
  certPem?: string;
  keyPem?: string;
  /** Renewed (or, in a dry-run, to be renewed) in this run. */
  changed: boolean;
  digest?: string;
}

export async function renewCertificates(config: PhoenixConfig, options: PhoenixOptions, flags: RenewalFlags): Promise<RenewalReport> {
  const model = buildModel(config, options);
  for (const warning of model.warnings) warn(warning);
  const report: RenewalReport = { entries: [] };

  const skip = await caContainerProblem(model.ca);
  if (skip) {
    warn(`${skip}. Skipping certificate renewal.`);
    report.skipped = skip;
    return report;
  }
  const root = await readRoot(config, options, model.ca);

  // 1. check
  const work: Work[] = model.plans.map((plan) => {
    const certPem = readIfExists(plan.certFile);
    const keyPem = readIfExists(plan.keyFile);
    const inspection = inspect(certPem, keyPem, root.cert, { commonName: plan.name, sans: plan.sans, certType: plan.certType, renewBeforeMs: plan.renewBeforeMs });
    const renew = flags.force ? ['--force'] : inspection.reasons;
    const why = renew.length > 0 ? renew.join('; ') : `valid until ${inspection.notAfter?.toISOString() ?? '?'} (${formatDuration((inspection.notAfter?.getTime() ?? 0) - Date.now())} left)`;
    const item: Work = { plan, renew, changed: false, report: { name: plan.name, outcome: renew.length > 0 ? 'renewed' : 'valid', why } };
    if (certPem !== undefined) item.certPem = certPem;
    if (keyPem !== undefined) item.keyPem = keyPem;
    return item;
  });
  const toRenew = work.filter((w) => w.renew.length > 0);
  const owners = new OwnerResolver();
  for (const item of work) if (item.renew.length === 0) await keepOwner(item, owners);
  info(`${model.plans.length} certificate(s) in ${model.file}: ${toRenew.length} to renew${flags.force ? ' (--force)' : ''}`);

  // 2. issue
  if (toRenew.length > 0) {
    const blocker = await issuanceProblem(model.ca);
    for (const [i, item] of toRenew.entries()) {
      const progress = `[${i + 1}/${toRenew.length}] ${item.plan.name}`;
      const due = `renewal was due: ${item.renew.join('; ')}`;
      if (blocker) {
        fail(item, `${blocker} (${due})`);
        continue;
      }
      info(`${progress}: renewing (${item.renew.join('; ')})`);
      try {
        const issued = await issueCertificate(item.plan, model.ca, root.cert, owners);
        item.changed = true;
        if (issued.written) {
          item.certPem = issued.certPem as string;
          item.keyPem = readIfExists(item.plan.keyFile) as string;
          success(`${progress}: renewed`);
        }
      } catch (err) {
        fail(item, `${(err as Error).message} (${due})`);
      }
    }
  }
  for (const item of work) if (item.renew.length === 0) info(`${item.plan.name}: ${item.report.why}`);

  // 3. deliver
  if (flags.generateOnly) {
    info('--generate-only: nothing is copied into guests, no post-renewal command or reload runs');
    for (const item of work) if (item.changed) setDelivery(item, 'skipped', '--generate-only');
  } else {
    await deliver(config, options, model, work, root.pem);
  }

  report.entries = work.map((w) => w.report);
  return report;
}

/**
 * A certificate that needs no renewal still gets the owner the manifest
 * gives its files (an earlier run may have chosen another, e.g. host ids
 * where the container's were meant).
 */
async function keepOwner(item: Work, owners: OwnerResolver): Promise<void> {
  const { plan } = item;
  if (!plan.owner || item.report.outcome === 'failed') return;
  let ids: { uid: number; gid: number };
  try {
    ids = await owners.resolve(plan.owner);
  } catch (err) {
    fail(item, (err as Error).message);
    return;
  }
  for (const file of [plan.keyFile, plan.certFile]) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      continue;
    }
    if (stat.uid === ids.uid && stat.gid === ids.gid) continue;
    if (isDryRun()) info(`DRY-RUN: would chown ${ids.uid}:${ids.gid} ${file} (owner ${plan.owner.text})`);
    else {
      fs.chownSync(file, ids.uid, ids.gid);
      info(`${file} now belongs to ${ids.uid}:${ids.gid} (owner ${plan.owner.text})`);
    }
    item.changed = true;
  }
}

function fail(item: Work, why: string): void {
  item.report.outcome = 'failed';
  item.report.why = why;
}

function setDelivery(item: Work, outcome: NonNullable<EntryReport['delivery']>, why?: string): void {
  item.report.delivery = outcome;
  if (why === undefined) delete item.report.deliveryWhy;
  else item.report.deliveryWhy = why;
}

async function deliver(config: PhoenixConfig, options: PhoenixOptions, model: RenewalModel, work: Work[], rootPem: string): Promise<void> {
  const state: DeliveryState = readDeliveryState(options.hostRoot);
  const services = managedServices(config);
  const pending: Work[] = [];
  for (const item of work) {
    if (item.report.outcome === 'failed' || (item.certPem === undefined && !item.changed)) continue;
    const digest = item.certPem === undefined ? undefined : deliveryDigest(item.plan, item.certPem, rootPem);
    if (digest !== undefined) item.digest = digest;
    const recorded = state[stateKey(item.plan)];
    if (!item.changed && digest !== undefined && recorded?.digest === digest) {
      setDelivery(item, 'up-to-date');
      continue;
    }
    pending.push(item);
  }

  const running = new Map<string, boolean>();
  const isRunning = async (kind: 'lxc' | 'vm', id: string): Promise<boolean> => {
    const key = `${kind}:${id}`;
    let answer = running.get(key);
    if (answer === undefined) {
      answer = (await toolFor(kind).status(id)) === 'running';
      running.set(key, answer);
    }
    return answer;
  };

  const delivered: Work[] = [];
  for (const item of pending) {
    const { plan } = item;
    const where = plan.guest ? `${plan.guest.kind === 'lxc' ? 'CT' : 'VM'} ${plan.guest.id}` : 'the host';
    try {
      if (plan.guest && !(await isRunning(plan.guest.kind, plan.guest.id))) {
        setDelivery(item, 'pending', `${where} is not running; delivered on a later run`);
        warn(`${plan.name}: ${where} is not running; its copy and post-renewal command wait for a later run`);
        continue;
      }
      const files = plan.guest ? pushFiles(plan, item.certPem ?? '', item.keyPem ?? '', { file: model.ca.rootFile, pem: rootPem }) : [];
      if (plan.guest && files.length > 0) {
        info(`${plan.name}: copying ${files.map((f) => f.guestPath).join(', ')} into ${where}`);
        await pushIntoGuest(plan.guest, files);
      }
      try {
        await runPostCommand(plan);
      } finally {
        if (plan.guest && plan.push.handover) await removeHandover(plan.guest, files.map((f) => f.guestPath));
      }
      const verified = await verifyInGuest(plan);
      const steps = [files.length > 0 ? `copied into ${where}` : undefined, plan.post ? 'post-renewal command run' : undefined, verified].filter(Boolean);
      setDelivery(item, 'delivered', steps.length > 0 ? steps.join(', ') : undefined);
      delivered.push(item);
    } catch (err) {
      fail(item, `delivery to ${where} failed: ${(err as Error).message}`);
      setDelivery(item, 'failed');
    }
  }

  await reloadServices(services, delivered);

  if (!isDryRun()) {
    let changed = false;
    for (const item of delivered) {
      if (item.report.outcome === 'failed' || item.digest === undefined) continue;
      state[stateKey(item.plan)] = { digest: item.digest, at: new Date().toISOString() };
      changed = true;
    }
    if (changed) writeDeliveryState(options.hostRoot, state);
  }
}

/** One reload per service whose container received a changed certificate in this run. */
async function reloadServices(services: readonly ServiceReload[], delivered: Work[]): Promise<void> {
  for (const service of services) {
    const mine = delivered.filter((w) => w.plan.guest?.kind === 'lxc' && w.plan.guest.id === service.ctid);
    if (mine.length === 0) continue;
    try {
      const outcome = await reloadService(service);
      const note = outcome === 'reloaded' ? `${service.unit} ${service.action === 'reload' ? 'reloaded' : 'restarted'}` : `${service.unit} not running (it reads the files when it starts)`;
      info(`CT ${service.ctid}: ${note} for ${mine.map((w) => w.plan.name).join(', ')}`);
      for (const item of mine) item.report.deliveryWhy = [item.report.deliveryWhy, note].filter(Boolean).join(', ');
    } catch (err) {
      for (const item of mine) {
        const message = (err as Error).message;
        fail(item, message.includes(`CT ${service.ctid}`) ? message : `${service.unit} in CT ${service.ctid}: ${message}`);
        setDelivery(item, 'failed');
      }
    }
  }
}

/**
 * Why nothing can be renewed at all: the CA container does not exist or is
 * not running (the bash tested existence only). Such a run is skipped and
 * succeeds, as the bash's did: it happens on every create before CT 103.
 */
async function caContainerProblem(ca: CaSettings): Promise<string | undefined> {
  const status = await pct.status(ca.ctid);
  if (status === 'absent') return `Step CA container (${ca.ctid}) does not exist`;
  if (status !== 'running') return `Step CA container (${ca.ctid}) is not running`;
  return undefined;
}

/** Why no certificate can be issued now, checked once before the first: the password file and the CA's health. */
async function issuanceProblem(ca: CaSettings): Promise<string | undefined> {
  let password: string;
  try {
    const stat = fs.statSync(ca.passwordFile);
    if ((stat.mode & 0o077) !== 0) warn(`${ca.passwordFile} is readable by others than its owner (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`);
    password = fs.readFileSync(ca.passwordFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `the provisioner password file ${ca.passwordFile} ${code === 'ENOENT' ? 'does not exist (the Step-CA application script of CT ' + ca.ctid + ' creates it)' : `cannot be read (${code ?? String(err)})`}`;
  }
  // step reads the file itself; registered only so no output can ever show it.
  addSecret(password.trim());
  addSecret(password);
  const health = await query({ cmd: 'step', args: ['ca', 'health', '--ca-url', ca.url, '--root', ca.rootFile], allowFailure: true, timeoutMs: HEALTH_TIMEOUT_MS, quiet: true });
  if (health.code !== 0) {
    const detail = (health.stderr.trim() || health.stdout.trim()).split('\n').slice(-2).join(' | ');
    return `the CA at ${ca.url} does not answer${detail ? `: ${detail}` : ''}`;
  }
  return undefined;
}

/**
 * The host's copy of the root CA, the trust anchor for issuing (`--root`)
 * and for checking every certificate. A host without one yet (a CA created
 * before this toolkit kept a copy) gets it from the CA container first.
 */
async function readRoot(config: PhoenixConfig, options: PhoenixOptions, ca: CaSettings): Promise<{ cert: X509Certificate; pem: string }> {
  let pem = readIfExists(ca.rootFile);
  if (pem === undefined) {
    info(`no root CA copy at ${ca.rootFile}; fetching it from CT ${ca.ctid}`);
    try {
      pem = (await ensureHostRootCa({ config, options })).pem;
    } catch (err) {
      throw new PhoenixError(`the root CA copy ${ca.rootFile} does not exist on the host and cannot be fetched: ${(err as Error).message}`, {
        hint: `the CA in CT ${ca.ctid} is missing or unfinished (a create that failed or was interrupted); \`phoenix create ${ca.ctid}\` finishes it and copies its root to the host`,
      });
    }
  }
  try {
    return { cert: new X509Certificate(pem), pem };
  } catch (err) {
    throw new PhoenixError(`the root CA copy ${ca.rootFile} is not a PEM certificate: ${(err as Error).message}`);
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PhoenixError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
