// Applying the DNS plan (lib/hypervisor/dns.mts) to the host: dnsmasq
// installed when missing, Phoenix's two files checked with `dnsmasq --test`
// before either is written, written atomically, the service restarted only
// when one of them changed (dnsmasq re-reads host records only on a
// restart) and started when it is not running, then the host's resolv.conf
// pointed at it. A second run on an unchanged host writes nothing and
// restarts nothing.
//
// Unlike the bash, nothing else in /etc/dnsmasq.d is deleted, dnsmasq is
// not stopped during the run, apt runs only when the package is missing,
// and the old dnsmasq.conf is backed up once instead of on every run.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { PhoenixError } from '../core/errors.mts';
import { writeFileAtomic, type WriteOutcome } from '../core/fs.mts';
import { info, success, warn } from '../core/log.mts';
import { query } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import {
  DNSMASQ_CONF,
  DNSMASQ_CONF_BACKUP,
  dnsPlan,
  MARKER,
  RECORDS_CONF,
  renderCheckedConf,
  renderDnsmasqConf,
  renderRecordsConf,
  renderResolvConf,
  RESOLV_BACKUP,
  RESOLV_CONF,
  type DnsPlan,
} from './dns.mts';
import { aptInstall, hostFile, packageInstalled, systemctl, unitActiveState, unitEnabled } from './host.mts';

export const DNSMASQ_PACKAGE = 'dnsmasq';
export const DNSMASQ_UNIT = 'dnsmasq';

export interface DnsResult {
  outcome: 'disabled' | 'unchanged' | 'changed';
  plan: DnsPlan;
  /** One line per change made (or, in dry-run, planned). */
  changes: string[];
}

export async function setupDnsServer(config: PhoenixConfig, options: PhoenixOptions): Promise<DnsResult> {
  // Everything the manifests decide is settled here, before any change.
  const plan = dnsPlan(config);
  const changes: string[] = [];
  if (!plan.enabled) {
    info('dns_server.enabled is not true in the hypervisor config: nothing to do');
    return { outcome: 'disabled', plan, changes };
  }
  for (const note of plan.notes) info(`DNS: ${note}`);
  info(`DNS: ${plan.records.length} names for ${plan.localZones.join(', ')}; listening on ${plan.listenAddresses.join(', ')}; upstream ${plan.upstreams.join(', ')}`);

  if (!(await packageInstalled(DNSMASQ_PACKAGE))) {
    info(`installing ${DNSMASQ_PACKAGE}`);
    await aptInstall([DNSMASQ_PACKAGE]);
    changes.push(`installed ${DNSMASQ_PACKAGE}`);
  }

  await checkWithDnsmasq(plan);

  const mainFile = hostFile(options, DNSMASQ_CONF);
  const recordsFile = hostFile(options, RECORDS_CONF);
  backupOnce(mainFile, hostFile(options, DNSMASQ_CONF_BACKUP), changes);
  const written: Array<[string, WriteOutcome]> = [
    [DNSMASQ_CONF, writeFileAtomic(mainFile, renderDnsmasqConf(plan), { mode: 0o644 })],
    [RECORDS_CONF, writeFileAtomic(recordsFile, renderRecordsConf(plan), { mode: 0o644 })],
  ];
  const changedFiles = written.filter(([, outcome]) => outcome !== 'unchanged').map(([file]) => file);
  for (const file of changedFiles) changes.push(`wrote ${file}`);

  if (!(await unitEnabled(DNSMASQ_UNIT))) {
    await systemctl('enable', DNSMASQ_UNIT);
    changes.push(`enabled ${DNSMASQ_UNIT}`);
  }
  const state = await unitActiveState(DNSMASQ_UNIT);
  if (changedFiles.length > 0 || state !== 'active') {
    // An inactive unit is started (with the new files); a running or failed one restarted.
    const verb = state === 'inactive' ? 'start' : 'restart';
    await systemctl(verb, DNSMASQ_UNIT);
    changes.push(state === 'active' ? `restarted ${DNSMASQ_UNIT} (its files changed)` : `${verb === 'start' ? 'started' : 'restarted'} ${DNSMASQ_UNIT} (it was ${state})`);
    if (!isDryRun()) {
      const after = await unitActiveState(DNSMASQ_UNIT);
      if (after !== 'active') {
        throw new PhoenixError(`${DNSMASQ_UNIT} is ${after} after the ${verb}`, {
          hint: `see 'journalctl -u ${DNSMASQ_UNIT}': another server may hold port 53 on ${plan.listenAddresses.join(', ')}`,
        });
      }
    }
  }

  // Only once dnsmasq answers does the host send its own lookups there.
  pointResolverAtDnsmasq(plan, options, changes);

  if (changes.length === 0) success('DNS server already configured; nothing changed');
  else success(`DNS server configured: ${changes.join('; ')}`);
  return { outcome: changes.length === 0 ? 'unchanged' : 'changed', plan, changes };
}

/**
 * `dnsmasq --test` on Phoenix's two files together, from a private temp
 * file, before either is installed. Without dnsmasq (a dry-run on a host
 * that does not have it yet) the check is skipped with a note.
 */
async function checkWithDnsmasq(plan: DnsPlan): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-dnsmasq-'));
  try {
    const file = path.join(dir, 'phoenix-check.conf');
    fs.writeFileSync(file, renderCheckedConf(plan), { mode: 0o600 });
    const result = await query({ cmd: 'dnsmasq', args: ['--test', '-C', file], allowFailure: true, quiet: true });
    if (result.code === 127 && isDryRun()) {
      info('dnsmasq is not installed yet: the generated files are checked once it is');
      return;
    }
    if (result.code !== 0) {
      const said = (result.stderr.trim() || result.stdout.trim()).split(file).join('<generated configuration>');
      // The temp file is gone by the time anyone reads the log: quote the line.
      const lineNumber = Number(/at line (\d+) of/.exec(said)?.[1]);
      const line = Number.isInteger(lineNumber) ? renderCheckedConf(plan).split('\n')[lineNumber - 1] : undefined;
      throw new PhoenixError(`dnsmasq rejects the generated configuration: ${said}${line === undefined ? '' : ` (line ${lineNumber}: ${line})`}`, {
        hint: 'nothing was installed or restarted; fix the manifest value named above',
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Keep a copy of a file Phoenix did not write, once (an existing backup is never overwritten). */
function backupOnce(file: string, backup: string, changes: string[]): void {
  const current = readIfExists(file);
  if (current === undefined || current.startsWith(MARKER) || fs.existsSync(backup)) return;
  if (writeFileAtomic(backup, current, { mode: 0o644 }) !== 'unchanged') changes.push(`kept the previous ${path.basename(file)} as ${path.basename(backup)}`);
}

function pointResolverAtDnsmasq(plan: DnsPlan, options: PhoenixOptions, changes: string[]): void {
  const resolv = hostFile(options, RESOLV_CONF);
  let link: string | undefined;
  try {
    link = fs.readlinkSync(resolv);
  } catch {
    link = undefined;
  }
  if (link !== undefined) {
    // systemd-resolved or resolvconf owns it; replacing their link would fight them.
    warn(`${RESOLV_CONF} is a link to ${link} (managed by another service): left alone; point that service at ${plan.listenAddresses[0]} for the host to resolve ${plan.domain}`);
    return;
  }
  backupOnce(resolv, hostFile(options, RESOLV_BACKUP), changes);
  if (writeFileAtomic(resolv, renderResolvConf(plan), { mode: 0o644 }) !== 'unchanged') changes.push(`wrote ${RESOLV_CONF}`);
}
