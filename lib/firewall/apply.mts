// Applying the planned files: ownership (a marker line), atomic writes,
// removal of stale Phoenix files, `pve-firewall compile` and a restart only
// after a change.

import fs from 'node:fs';
import path from 'node:path';
import { type FileKind, type FirewallPlan, type Ownership, type PlannedFile, ownership, planFirewall } from './files.mts';
import { ManifestError, type PhoenixConfig } from '../config/load.mts';
import { PhoenixError } from '../core/errors.mts';
import { type WriteOutcome, removeFile, writeFileAtomic } from '../core/fs.mts';
import { debug, error, info, success, warn } from '../core/log.mts';
import { firewallCompile, firewallRestart, nodeName } from '../pve/pvesh.mts';
import { isDryRun } from '../core/context.mts';
import { resolveOptions } from '../core/env.mts';

export interface ApplyOptions {
  /** Overwrite or delete firewall files that carry no Phoenix marker. */
  force?: boolean;
  /** Only this guest's file (plus cluster.fw and host.fw). */
  only?: string;
  /** Run `pve-firewall compile` even when nothing changed (the script does; in-process callers need not). */
  alwaysValidate?: boolean;
  pveDir?: string;
  node?: string;
}

export interface FileResult {
  path: string;
  outcome: WriteOutcome | 'removed' | 'foreign';
}

export interface CompileProblem {
  /** The file as pve-firewall names it (/etc/pve/…). */
  shownPath: string;
  /** The file on this host. */
  path: string;
  line: number;
  text: string;
  /** The manifest rule the line came from, when Phoenix wrote it. */
  origin?: string;
  owned: boolean;
}

export interface ApplyResult {
  files: FileResult[];
  changed: boolean;
  restarted: boolean;
  problems: CompileProblem[];
}

const FILE_MODE = 0o640; // the only mode pmxcfs (/etc/pve) lets a file have outside priv/

const nodeNames = new Map<string, Promise<string>>();

/** This host's node name, asked once per process. */
function localNode(pveDir: string): Promise<string> {
  let name = nodeNames.get(pveDir);
  if (!name) {
    name = nodeName().then((n) => {
      // It becomes a path component under /etc/pve/nodes.
      if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(n)) throw new PhoenixError(`pvesh reports an unusable node name ${JSON.stringify(n)}`);
      return n;
    });
    nodeNames.set(pveDir, name);
    name.catch(() => nodeNames.delete(pveDir));
  }
  return name;
}

function readCurrent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Bring the firewall files to the manifests' state: write what differs,
 * remove stale Phoenix files, check the result with `pve-firewall compile`,
 * and restart the firewall only when something changed.
 */
export async function applyFirewall(config: PhoenixConfig, options: ApplyOptions = {}): Promise<ApplyResult> {
  const pveDir = options.pveDir ?? resolveOptions().pveDir;
  const node = options.node ?? (await localNode(pveDir));
  const plan = planFirewall(config, { pveDir, node, read: readCurrent });
  const only = options.only;
  if (only !== undefined && !config.guest(only)) throw new PhoenixError(`no guest ${only} in the manifests`);
  const selected = plan.files.filter((f) => f.kind !== 'guest' || only === undefined || f.id === only);

  const issues = selected.flatMap((f) => f.issues);
  if (issues.length > 0) {
    throw new ManifestError(issues, { hint: 'pve-firewall would skip these rules; nothing was written' });
  }
  for (const file of selected) for (const w of file.warnings) warn(`${w.file}${w.pointer ? ` at ${w.pointer}` : ''}: ${w.message}`);

  const results: FileResult[] = [];
  const blocked: string[] = [];
  // Guests first, cluster.fw (with the master switch) last: the daemon may
  // pick files up at any moment and should never see new cluster rules
  // before the guest rules they go with.
  const order: FileKind[] = ['guest', 'host', 'cluster'];
  for (const kind of order) {
    for (const file of selected.filter((f) => f.kind === kind)) {
      if (file.ownership === 'foreign' && !options.force) {
        blocked.push(file.path);
        results.push({ path: file.path, outcome: 'foreign' });
        continue;
      }
      results.push({ path: file.path, outcome: writeFileAtomic(file.path, file.content, { mode: FILE_MODE }) });
    }
  }
  // Only Phoenix's own files are stale; a file of a guest the manifests do
  // not know belongs to whoever made it, even under --force.
  for (const stale of staleFiles(plan, only, readCurrent)) {
    if (stale.ownership !== 'owned') continue;
    const outcome = removeFile(stale.path);
    if (outcome === 'removed') results.push({ path: stale.path, outcome });
  }
  for (const file of blocked) {
    warn(`${file} has no Phoenix marker line: someone else manages it, so it was left as it is (run with --force to replace it; aliases, ipsets and groups in it are kept)`);
  }

  const changed = results.some((r) => r.outcome === 'created' || r.outcome === 'changed' || r.outcome === 'removed');
  let problems: CompileProblem[] = [];
  if (isDryRun()) {
    debug('dry-run: pve-firewall compile skipped (it would read the old files)');
  } else if (changed || options.alwaysValidate) {
    const compiled = await firewallCompile();
    const ownedPaths = new Map<string, PlannedFile>();
    for (const file of selected) if (results.some((r) => r.path === file.path && r.outcome !== 'foreign')) ownedPaths.set(file.path, file);
    problems = parseCompileOutput(`${compiled.stderr}\n${compiled.stdout}`, pveDir, node).map((p) => {
      const planned = ownedPaths.get(p.path);
      const origin = planned?.origins.get(p.line);
      return { ...p, owned: planned !== undefined, ...(origin ? { origin } : {}) };
    });
    for (const p of problems) {
      const where = `${p.shownPath} line ${p.line}${p.origin ? ` (from ${p.origin})` : ''}`;
      (p.owned ? error : warn)(`pve-firewall rejects ${where}: ${p.text}`);
    }
  }

  let restarted = false;
  if (changed) {
    await firewallRestart();
    restarted = true;
  }
  const counts = summarize(results);
  if (changed) success(`firewall files: ${counts}; pve-firewall ${isDryRun() ? 'would be ' : ''}restarted`);
  else info(`firewall unchanged (${counts}); no restart`);

  const rejected = problems.filter((p) => p.owned);
  if (rejected.length > 0) {
    throw new PhoenixError(`pve-firewall rejected ${rejected.length} line${rejected.length === 1 ? '' : 's'} Phoenix wrote`, {
      hint: 'this is a gap between Phoenix\'s checks and pve-firewall; please report it with the lines above',
    });
  }
  return { files: results, changed, restarted, problems };
}

/**
 * One guest's firewall file (and cluster.fw / host.fw when they differ),
 * for lxc-manager and vm-manager after they create or change a guest.
 */
export function applyGuestFirewall(config: PhoenixConfig, id: string | number, options: Omit<ApplyOptions, 'only'> = {}): Promise<ApplyResult> {
  return applyFirewall(config, { ...options, only: String(id) });
}

interface StaleFile {
  path: string;
  ownership: Ownership;
}

function staleFiles(plan: FirewallPlan, only: string | undefined, read: (file: string) => string | undefined): StaleFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(plan.firewallDir);
  } catch {
    return [];
  }
  const stale: StaleFile[] = [];
  for (const name of names.sort()) {
    const m = /^(\d+)\.fw$/.exec(name);
    if (!m || plan.guestIds.has(m[1] as string)) continue;
    if (only !== undefined && m[1] !== only) continue;
    const file = path.join(plan.firewallDir, name);
    stale.push({ path: file, ownership: ownership(read(file)) });
  }
  return stale;
}

function summarize(results: FileResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const label: Record<string, string> = { created: 'created', changed: 'updated', unchanged: 'unchanged', removed: 'removed', foreign: 'left to their owner' };
  return [...counts].map(([k, n]) => `${n} ${label[k] ?? k}`).join(', ');
}

/**
 * The complaints of `pve-firewall compile` about files: `<file> (line N): msg`
 * for lines it cannot parse, `<file> (line N) - errors in rule parameters: <rule>`
 * followed by indented `  <param>: <msg>` lines for rules it skips.
 */
export function parseCompileOutput(output: string, pveDir: string, node: string): Omit<CompileProblem, 'owned' | 'origin'>[] {
  const problems: Omit<CompileProblem, 'owned' | 'origin'>[] = [];
  const lines = output.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\/etc\/pve\/\S+) \(line (\d+)\)(?::| -) (.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const details: string[] = [];
    while (i + 1 < lines.length && /^\s+\S/.test(lines[i + 1] as string)) details.push((lines[++i] as string).trim());
    const shownPath = m[1] as string;
    const relative = shownPath.slice('/etc/pve/'.length).replace(/^local\//, `nodes/${node}/`);
    problems.push({
      shownPath,
      path: path.join(pveDir, relative),
      line: Number(m[2]),
      text: [m[3] as string, ...details].join('; '),
    });
  }
  return problems;
}
