// The node's apt sources: which Proxmox VE release it runs, the enterprise
// repositories turned off, the no-subscription ones turned on, and the
// Smallstep repository for step-cli.
//
// The release comes from the node itself (/etc/os-release VERSION_CODENAME:
// bookworm is PVE 8, trixie is PVE 9); the bash assumed trixie everywhere.
// The Proxmox archive key already ships with PVE and is never downloaded.
//
// Enterprise repositories are disabled in place, in the installer's own
// files, so that nothing re-creates them on upgrade and undoing it is one
// edit: a one-line `.list` entry becomes `# phoenix-disabled: <the line>`
// (remove that prefix to re-enable); a deb822 `.sources` stanza gets
// `Enabled: no` (PVE 9's documented way). Every other byte of those files
// stays. The no-subscription repositories go into one file Phoenix owns,
// phoenix-proxmox.sources, holding only what no other file already enables,
// so apt never sees a repository twice.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { readIfExists, removeFile, writeFileAtomic } from '../core/fs.mts';
import { query } from '../core/runner.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { fileChange } from './setup-step.mts';
import { hostFile } from './host.mts';

export const SOURCES_DIR = '/etc/apt/sources.list.d';
export const OWNED_SOURCES = `${SOURCES_DIR}/phoenix-proxmox.sources`;
export const DISABLED_PREFIX = '# phoenix-disabled: ';
const ENTERPRISE = /(^|\/\/)enterprise\.proxmox\.com\//;
const PROXMOX_REPO = 'http://download.proxmox.com/debian';

export interface PveRelease {
  codename: 'bookworm' | 'trixie';
  pve: 8 | 9;
  /** The Ceph release of the no-subscription repository when the node shows none. */
  defaultCeph: string;
}

const RELEASES: Record<string, PveRelease> = {
  bookworm: { codename: 'bookworm', pve: 8, defaultCeph: 'reef' },
  trixie: { codename: 'trixie', pve: 9, defaultCeph: 'squid' },
};

/** Ceph's major version → release name (ceph-common's version tells which repository the node follows). */
const CEPH_BY_MAJOR: Record<string, string> = { '17': 'quincy', '18': 'reef', '19': 'squid' };

/** VERSION_CODENAME of an os-release text. */
export function codenameOf(osRelease: string): string | undefined {
  const match = /^VERSION_CODENAME=["']?([^"'\s]*)["']?\s*$/m.exec(osRelease);
  return match?.[1] === '' ? undefined : match?.[1];
}

/** The PVE release of the node at options.hostRoot; fatal on anything else than Debian 12 or 13. */
export function readRelease(options: PhoenixOptions): PveRelease {
  const file = hostFile(options, '/etc/os-release');
  const text = readIfExists(file)?.toString('utf8');
  if (text === undefined) throw new PhoenixError(`${file} is missing: cannot tell which Debian release this node runs`);
  const codename = codenameOf(text);
  const release = codename === undefined ? undefined : RELEASES[codename];
  if (release === undefined) {
    throw new PhoenixError(`unsupported release '${codename ?? '(no VERSION_CODENAME)'}' in ${file}`, {
      hint: 'Phoenix sets up Proxmox VE 8 (Debian bookworm) and 9 (Debian trixie)',
    });
  }
  return release;
}

// ---------------------------------------------------------------- reading sources

/** One repository line or stanza, as apt reads it. */
export interface SourceEntry {
  file: string;
  enabled: boolean;
  uris: string[];
  suites: string[];
  components: string[];
}

/** Entries of a one-line `.list` text (commented lines count as disabled). */
export function parseListFile(text: string, file: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    let enabled = true;
    if (line.startsWith('#')) {
      enabled = false;
      line = line.replace(/^#+\s*(phoenix-disabled:\s*)?/, '');
    }
    const match = /^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    entries.push({ file, enabled, uris: [match[2]!], suites: [match[3]!], components: match[4]!.split(/\s+/).filter(Boolean) });
  }
  return entries;
}

interface Stanza {
  /** Indexes of its lines in the file's line array. */
  lines: number[];
  fields: Record<string, { value: string; line: number }>;
}

function stanzasOf(lines: readonly string[]): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza | undefined;
  let last: string | undefined;
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      current = undefined;
      return;
    }
    if (current === undefined) stanzas.push((current = { lines: [], fields: {} }));
    current.lines.push(index);
    if (line.startsWith('#')) return;
    if (/^\s/.test(line) && last !== undefined && current.fields[last]) {
      current.fields[last]!.value += ` ${line.trim()}`;
      return;
    }
    const match = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (!match) return;
    last = match[1]!.toLowerCase();
    current.fields[last] = { value: match[2]!.trim(), line: index };
  });
  return stanzas;
}

const words = (value: string | undefined): string[] => (value ?? '').split(/\s+/).filter(Boolean);
const isOff = (value: string | undefined): boolean => value !== undefined && /^(no|false|0)$/i.test(value.trim());

/** Entries of a deb822 `.sources` text. */
export function parseSourcesFile(text: string, file: string): SourceEntry[] {
  return stanzasOf(text.split('\n'))
    .filter((s) => words(s.fields.types?.value).includes('deb'))
    .map((s) => ({ file, enabled: !isOff(s.fields.enabled?.value), uris: words(s.fields.uris?.value), suites: words(s.fields.suites?.value), components: words(s.fields.components?.value) }));
}

// ---------------------------------------------------------------- disabling the enterprise repositories

/** A `.list` text with its enabled enterprise lines commented out (the same text when there are none). */
export function disableEnterpriseList(text: string): string {
  return text
    .split('\n')
    .map((line) => (/^\s*deb(-src)?\s/.test(line) && ENTERPRISE.test(line.split(/\s+/).find((w) => /:\/\//.test(w)) ?? '') ? `${DISABLED_PREFIX}${line}` : line))
    .join('\n');
}

/** A `.sources` text whose enterprise stanzas say `Enabled: no` (the same text when they already do). */
export function disableEnterpriseSources(text: string): string {
  const lines = text.split('\n');
  const inserts: Array<{ after: number; line: string }> = [];
  for (const stanza of stanzasOf(lines)) {
    if (!words(stanza.fields.uris?.value).some((uri) => ENTERPRISE.test(uri))) continue;
    const enabled = stanza.fields.enabled;
    if (isOff(enabled?.value)) continue;
    if (enabled !== undefined) {
      const eol = lines[enabled.line]!.endsWith('\r') ? '\r' : '';
      lines[enabled.line] = `${lines[enabled.line]!.slice(0, lines[enabled.line]!.indexOf(':') + 1)} no${eol}`;
    } else {
      const lastLine = stanza.lines[stanza.lines.length - 1]!;
      inserts.push({ after: lastLine, line: `Enabled: no${lines[lastLine]!.endsWith('\r') ? '\r' : ''}` });
    }
  }
  for (const { after, line } of inserts.reverse()) lines.splice(after + 1, 0, line);
  return lines.join('\n');
}

/** The repository files of sources.list.d and their kind, Phoenix's own excluded. */
function sourceFiles(options: PhoenixOptions): Array<{ hostPath: string; file: string; kind: 'list' | 'sources' }> {
  const dir = hostFile(options, SOURCES_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((name) => `${SOURCES_DIR}/${name}` !== OWNED_SOURCES && /\.(list|sources)$/.test(name))
    .map((name) => ({ hostPath: `${SOURCES_DIR}/${name}`, file: path.join(dir, name), kind: name.endsWith('.list') ? ('list' as const) : ('sources' as const) }))
    .filter((f) => fs.statSync(f.file).isFile());
}

// ---------------------------------------------------------------- the no-subscription repositories

export interface ProxmoxSourcesResult {
  changes: string[];
  /** Whether apt's view of the sources changed (apt-get update is then due). */
  changed: boolean;
}

/** The keyring the Proxmox archive is signed with, as shipped by PVE. */
export function proxmoxKeyring(options: PhoenixOptions, release: PveRelease): string {
  const candidates = ['/usr/share/keyrings/proxmox-archive-keyring.gpg', `/etc/apt/trusted.gpg.d/proxmox-release-${release.codename}.gpg`];
  const found = candidates.find((candidate) => fs.existsSync(hostFile(options, candidate)));
  if (found === undefined) {
    throw new PhoenixError(`the Proxmox archive key is missing (none of ${candidates.join(', ')})`, {
      hint: 'a Proxmox VE installation ships it (package proxmox-archive-keyring); reinstall that package, Phoenix does not download keys for the Proxmox archive',
    });
  }
  return found;
}

/** The Ceph release the node follows: named by an existing Ceph repository, else by ceph-common, else the release's default. */
export async function cephRelease(entries: readonly SourceEntry[], release: PveRelease): Promise<string> {
  for (const entry of entries) {
    for (const uri of entry.uris) {
      const match = /\/debian\/ceph-([a-z]+)\/?$/.exec(uri);
      if (match) return match[1]!;
    }
  }
  const result = await query({ cmd: 'dpkg-query', args: ['-W', '--showformat=${Version}', 'ceph-common'], allowFailure: true, quiet: true });
  const major = result.code === 0 ? /^(?:\d+:)?(\d+)\./.exec(result.stdout.trim())?.[1] : undefined;
  return (major !== undefined ? CEPH_BY_MAJOR[major] : undefined) ?? release.defaultCeph;
}

function provides(entries: readonly SourceEntry[], uriPath: string, suite: string, component: string): boolean {
  const wanted = (uri: string) => uri.replace(/^https?:\/\//, '').replace(/\/+$/, '') === `download.proxmox.com/debian/${uriPath}`;
  return entries.some((e) => e.enabled && e.uris.some(wanted) && e.suites.includes(suite) && e.components.includes(component));
}

/** The text of phoenix-proxmox.sources for the stanzas needed (empty: none). */
export function ownedSourcesText(stanzas: ReadonlyArray<{ uri: string; suite: string; component: string }>, keyring: string): string {
  if (stanzas.length === 0) return '';
  const head = '# Written by Phoenix (hypervisor_initial_setup.sh); edits are overwritten.\n# The Proxmox no-subscription repositories no other file enables.\n';
  return head + stanzas.map((s) => `\nTypes: deb\nURIs: ${s.uri}\nSuites: ${s.suite}\nComponents: ${s.component}\nSigned-By: ${keyring}\n`).join('');
}

/** Enterprise repositories off, no-subscription repositories on, for the node's release. */
export async function ensureProxmoxSources(options: PhoenixOptions, release: PveRelease): Promise<ProxmoxSourcesResult> {
  const changes: string[] = [];
  const files = sourceFiles(options);
  const entries: SourceEntry[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f.file, 'utf8');
    const next = f.kind === 'list' ? disableEnterpriseList(text) : disableEnterpriseSources(text);
    const parsed = f.kind === 'list' ? parseListFile(text, f.hostPath) : parseSourcesFile(text, f.hostPath);
    entries.push(...(f.kind === 'list' ? parseListFile(next, f.hostPath) : parseSourcesFile(next, f.hostPath)));
    if (next === text) continue;
    const names = parsed.filter((e) => e.enabled && e.uris.some((u) => ENTERPRISE.test(u))).flatMap((e) => e.uris).join(', ');
    const outcome = writeFileAtomic(f.file, next, { mode: fs.statSync(f.file).mode & 0o7777 });
    if (outcome !== 'unchanged') changes.push(`disabled the enterprise repository ${names} in ${f.hostPath}`);
  }
  const keyring = proxmoxKeyring(options, release);
  const ceph = await cephRelease(entries, release);
  const wanted = [
    { uri: `${PROXMOX_REPO}/pve`, path: 'pve', suite: release.codename, component: 'pve-no-subscription' },
    { uri: `${PROXMOX_REPO}/ceph-${ceph}`, path: `ceph-${ceph}`, suite: release.codename, component: 'no-subscription' },
  ].filter((s) => !provides(entries, s.path, s.suite, s.component));
  const owned = hostFile(options, OWNED_SOURCES);
  const text = ownedSourcesText(wanted, keyring);
  if (text === '') {
    if (removeFile(owned) === 'removed') changes.push(`removed ${OWNED_SOURCES} (other files enable the same repositories)`);
  } else {
    fileChange(changes, writeFileAtomic(owned, text, { mode: 0o644 }), OWNED_SOURCES, wanted.map((s) => `${s.path} ${s.component}`).join(', '));
  }
  return { changes, changed: changes.length > 0 };
}
