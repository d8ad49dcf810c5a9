// `dnsmasq --test` on the host, and the configuration check that
// `systemctl start dnsmasq` runs too.

import fs from 'node:fs';
import path from 'node:path';

import { ToolExit } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { packageInstalled, PACKAGE_CATALOG } from './packages.mts';

/** Options without a value. */
const DNSMASQ_FLAGS = new Set([
  'domain-needed', 'bogus-priv', 'strict-order', 'all-servers', 'stop-dns-rebind', 'rebind-localhost-ok', 'no-resolv',
  'no-poll', 'no-hosts', 'expand-hosts', 'bind-interfaces', 'bind-dynamic', 'localise-queries', 'log-queries',
  'no-negcache', 'filterwin2k', 'keep-in-foreground', 'no-daemon', 'dnssec', 'dnssec-check-unsigned', 'no-ping',
  'read-ethers', 'dhcp-authoritative', 'log-dhcp', 'quiet-dhcp', 'enable-ra', 'clear-on-reload', 'domain-needed',
]);

/** Options with a value, and how the value is checked ('' when anything goes). */
type ValueCheck = (value: string) => string | undefined;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:.]*$/;
const isIp = (v: string) => IPV4.test(v) || IPV6.test(v);
const DOMAIN = /^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/** `/dom1/dom2/` followed by the rest, or undefined when the value has no domain part. */
function domainPart(value: string): { domains: string[]; rest: string } | undefined {
  if (!value.startsWith('/')) return undefined;
  const end = value.lastIndexOf('/');
  if (end === 0) return { domains: [], rest: value.slice(1) };
  return { domains: value.slice(1, end).split('/').filter((d) => d !== ''), rest: value.slice(end + 1) };
}

function checkServer(value: string): string | undefined {
  const parts = domainPart(value);
  if (parts && parts.domains.some((d) => d !== '#' && !DOMAIN.test(d))) return 'bad domain';
  const target = (parts ? parts.rest : value).split('@')[0]!.split('#')[0]!;
  if (target === '' || target === '#') return parts ? undefined : 'Name or service not known';
  return isIp(target) ? undefined : 'Name or service not known';
}

const DNSMASQ_VALUES: Record<string, ValueCheck> = {
  port: (v) => (/^\d+$/.test(v) && Number(v) <= 65535 ? undefined : 'error'),
  'cache-size': (v) => (/^\d+$/.test(v) ? undefined : 'error'),
  'local-ttl': (v) => (/^\d+$/.test(v) ? undefined : 'error'),
  'listen-address': (v) => (v.split(',').every((a) => isIp(a.trim())) ? undefined : 'error'),
  server: checkServer,
  local: checkServer,
  address: (v) => {
    const parts = domainPart(v);
    if (!parts || parts.domains.length === 0) return 'error';
    if (parts.domains.some((d) => !DOMAIN.test(d))) return 'bad domain';
    return parts.rest === '' || parts.rest === '#' || isIp(parts.rest) ? undefined : 'error';
  },
  'host-record': (v) => {
    const fields = v.split(',').map((f) => f.trim());
    const addresses = fields.filter(isIp);
    if (addresses.length === 0) return 'bad address';
    for (const field of fields) {
      if (isIp(field) || /^\d+$/.test(field)) continue;
      if (!DOMAIN.test(field)) return 'bad name';
    }
    return undefined;
  },
  'rebind-domain-ok': (v) => (domainPart(v) ? undefined : 'error'),
  domain: (v) => (DOMAIN.test(v.split(',')[0]!) ? undefined : 'bad domain'),
  interface: () => undefined,
  'except-interface': () => undefined,
  'no-dhcp-interface': () => undefined,
  'conf-dir': () => undefined,
  'conf-file': () => undefined,
  'addn-hosts': () => undefined,
  'resolv-file': () => undefined,
  'pid-file': () => undefined,
  user: () => undefined,
  group: () => undefined,
  'log-facility': () => undefined,
  'cname': (v) => (v.split(',').length >= 2 ? undefined : 'bad CNAME'),
};

export interface DnsmasqCheck {
  ok: boolean;
  /** dnsmasq's complaint, without the `dnsmasq: ` prefix. */
  message?: string;
  /** 1 for a bad option, 3 for a file it cannot read (dnsmasq's exit codes). */
  exit: number;
}

/**
 * Parse a dnsmasq configuration file the way `dnsmasq --test` does, for the
 * directive forms Phoenix and Debian use. Includes (conf-file, conf-dir)
 * name host paths and are read under the host root.
 */
export function checkDnsmasqConfig(file: string, hostRoot: string, shownAs = file, depth = 0): DnsmasqCheck {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, exit: 3, message: `cannot read ${shownAs}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : 'Permission denied'}` };
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = ` at line ${i + 1} of ${shownAs}`;
    const eq = line.indexOf('=');
    const name = (eq === -1 ? line : line.slice(0, eq)).trim();
    const value = eq === -1 ? undefined : line.slice(eq + 1).trim();
    if (DNSMASQ_FLAGS.has(name)) {
      if (value !== undefined) return { ok: false, exit: 1, message: `extraneous parameter${at}` };
      continue;
    }
    const check = DNSMASQ_VALUES[name];
    if (!check) return { ok: false, exit: 1, message: `bad option${at}` };
    if (value === undefined || value === '') return { ok: false, exit: 1, message: `missing parameter${at}` };
    const problem = check(value);
    if (problem) return { ok: false, exit: 1, message: `${problem}${at}` };
    if (depth < 4 && (name === 'conf-file' || name === 'conf-dir')) {
      const [target = '', ...filters] = value.split(',');
      const included = name === 'conf-file' ? [target] : dirConfFiles(onHostRoot(hostRoot, target), filters).map((f) => `${target.replace(/\/+$/, '')}/${f}`);
      for (const hostPath of included) {
        const result = checkDnsmasqConfig(onHostRoot(hostRoot, hostPath), hostRoot, hostPath, depth + 1);
        if (!result.ok) return result;
      }
    }
  }
  return { ok: true, exit: 0 };
}

/** conf-dir's selection: `*.conf` keeps only matching names; other entries are suffixes to skip. */
function dirConfFiles(dir: string, filters: string[]): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isFile()).sort();
  } catch {
    return [];
  }
  const keep = filters.filter((f) => f.startsWith('*')).map((f) => f.slice(1));
  const skip = filters.filter((f) => !f.startsWith('*'));
  return names.filter((n) => !n.startsWith('.') && !n.endsWith('~') && (keep.length === 0 || keep.some((s) => n.endsWith(s))) && !skip.some((s) => n.endsWith(s)));
}

export function runDnsmasq(ctx: HostToolContext): void {
  if (!packageInstalled(ctx.root, 'dnsmasq-base')) throw new ToolExit(127, 'dnsmasq: command not found\n');
  let test = false;
  let confFile = '/etc/dnsmasq.conf';
  let confGiven = false;
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '--test') test = true;
    else if (arg === '-v' || arg === '--version') {
      ctx.out(`Dnsmasq version ${PACKAGE_CATALOG['dnsmasq-base']!.version.split('-')[0]}  Copyright (c) 2000-2024 Simon Kelley\n`);
      return;
    } else if (arg === '-C' || arg === '--conf-file') {
      confFile = ctx.argv[++i] ?? '';
      confGiven = true;
    } else if (arg.startsWith('--conf-file=')) {
      confFile = arg.slice('--conf-file='.length);
      confGiven = true;
    } else if (arg.startsWith('-C') && arg.length > 2) {
      confFile = arg.slice(2);
      confGiven = true;
    } else throw new ToolExit(1, `simhost: dnsmasq ${arg} is not simulated (only --test [-C file] and --version)\n`);
  }
  if (!test) throw new ToolExit(1, 'simhost: dnsmasq runs here only as `dnsmasq --test`; the service is started with systemctl\n');
  // -C names a file of the caller's; the default is the host's own.
  const file = confGiven ? confFile : onHostRoot(ctx.hostRoot, confFile);
  const result = checkDnsmasqConfig(file, ctx.hostRoot, confFile);
  if (!result.ok) throw new ToolExit(result.exit, `dnsmasq: ${result.message}\n\n`);
  ctx.err('dnsmasq: syntax check OK.\n');
}
