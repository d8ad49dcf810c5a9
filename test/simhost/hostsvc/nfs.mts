// The host's NFS server as nfs-utils 2.6 (Debian 12) shows it: `exportfs`
// (nfs-kernel-server) and `showmount` (nfs-common).
//
//   exportfs -r[a][v]  reads <host root>/etc/exports and /etc/exports.d/*.exports
//                      with the grammar of exports(5) (parseExports) and makes
//                      what it read the active table, kept in <state>/host-nfs.json;
//   exportfs [-v|-s]   prints the active table (exportfs's dump format);
//   showmount -e HOST  lists it ("Export list for HOST:"), when HOST is this node
//                      and nfs-server.service runs.
//
// As the real parser, a bad line stops the reading of its file: the exports
// read before it are active, the message is "exportfs: <file>:<line>: …", and
// the exit status is 1. A client written with a space before "(" is exported
// to the world with exportfs's warning; a path that does not exist is skipped
// with "Failed to stat". Without the package the tool is not there (127).

import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, paths, readJson, ToolExit } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { packageInstalled } from './packages.mts';
import { loadServices } from './units.mts';

export interface ActiveExport {
  path: string;
  client: string;
  /** The options as written, in order (defaults are not filled in). */
  options: string[];
}

export interface NfsState {
  exports: ActiveExport[];
}

function nfsFile(root: string): string {
  return path.join(root, 'host-nfs.json');
}

export function loadNfs(root: string): NfsState {
  return readJson<NfsState>(nfsFile(root), { exports: [] });
}

// ---------------------------------------------------------------- exports(5)

const FLAGS = new Set([
  'ro', 'rw', 'secure', 'insecure', 'sync', 'async', 'nordirplus', 'security_label', 'sign_fh', 'nohide', 'hide', 'crossmnt', 'nocrossmnt',
  'wdelay', 'no_wdelay', 'root_squash', 'no_root_squash', 'all_squash', 'no_all_squash', 'subtree_check', 'no_subtree_check',
  'auth_nlm', 'no_auth_nlm', 'secure_locks', 'insecure_locks', 'acl', 'no_acl', 'pnfs', 'no_pnfs', 'mountpoint', 'mp',
]);
const FLAVORS = new Set(['krb5', 'krb5i', 'krb5p', 'unix', 'sys', 'null', 'none']);

export interface ParsedExports {
  exports: ActiveExport[];
  /** exportfs's messages, without the "exportfs: " prefix. */
  errors: string[];
  warnings: string[];
}

/** One option; an error message (with the newline nfs-utils puts inside some, so they end in a blank line), or undefined when exportfs takes it. */
function checkOption(opt: string, where: string): string | undefined {
  if (FLAGS.has(opt)) return undefined;
  const eq = opt.indexOf('=');
  const key = eq > 0 ? opt.slice(0, eq) : opt;
  const value = eq > 0 ? opt.slice(eq + 1) : '';
  switch (key) {
    case 'anonuid':
    case 'anongid':
      return /^-?\d+$/.test(value) ? undefined : `${where.replace(':', ': ')}: bad ${key} "${opt}"\n`;
    case 'fsid':
      return value === 'root' || /^(0x[0-9a-f]+|\d+)$/i.test(value) || value.replace(/[^0-9a-f]/gi, '').length === 32 ? undefined : `${where.replace(':', ': ')}: bad fsid "${opt}"\n`;
    case 'sec':
      for (const f of value.split(':')) if (!FLAVORS.has(f)) return `unknown flavor ${f}\n`;
      return undefined;
    case 'mountpoint':
    case 'mp':
    case 'refer':
    case 'replicas':
    case 'squash_uids':
    case 'squash_gids':
      return undefined;
    case 'xprtsec':
      for (const m of value.split(':')) if (!['none', 'tls', 'mtls'].includes(m)) return `unknown xprtsec mode ${m}\n`;
      return undefined;
    default:
      return `${where}: unknown keyword "${opt}"\n`;
  }
}

/** Words of the file as xgettok reads them: blanks separate, "…" quotes, backslash-newline continues, # comments. */
function lines(text: string): Array<{ line: number; words: string[] }> {
  const out: Array<{ line: number; words: string[] }> = [];
  const physical = text.split('\n');
  for (let i = 0; i < physical.length; i++) {
    const start = i + 1;
    let logical = physical[i]!;
    while (logical.endsWith('\\') && i + 1 < physical.length) logical = logical.slice(0, -1) + physical[++i]!;
    const words: string[] = [];
    let word = '';
    let quoted = false;
    let inWord = false;
    for (const c of logical) {
      if (c === '"') {
        quoted = !quoted;
        inWord = true;
        continue;
      }
      if (!quoted && c === '#' && !inWord) break;
      if (!quoted && /[ \t\r]/.test(c)) {
        if (inWord) words.push(word);
        word = '';
        inWord = false;
        continue;
      }
      word += c;
      inWord = true;
    }
    if (inWord) words.push(word);
    if (words.length > 0) out.push({ line: start, words });
  }
  return out;
}

function unescapePath(word: string): string {
  return word.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse one exports file (its host path names it in messages). */
export function parseExports(text: string, file: string): ParsedExports {
  const result: ParsedExports = { exports: [], errors: [], warnings: [] };
  for (const { line, words } of lines(text)) {
    const where = `${file}:${line}`;
    const [first, ...rest] = words;
    const exportPath = unescapePath(first!);
    let defaults: string[] = [];
    const clients = [...rest];
    if (clients[0]?.startsWith('-')) defaults = clients.shift()!.slice(1).split(',').filter(Boolean);
    for (const opt of defaults) {
      const bad = checkOption(opt, where);
      if (bad !== undefined) {
        result.errors.push(bad);
        return result;
      }
    }
    if (clients.length === 0) clients.push('');
    for (const word of clients) {
      let host = word;
      let options = [...defaults];
      const open = word.indexOf('(');
      if (open >= 0) {
        const close = word.indexOf(')', open);
        if (close < 0 || close !== word.length - 1) {
          result.errors.push(`${where}: syntax error: bad option list`);
          return result;
        }
        host = word.slice(0, open);
        if (open === 0) {
          result.warnings.push(`No host name given with ${exportPath} ${word}, suggest *${word} to avoid warning`);
          host = '*';
        }
        options = [...options, ...word.slice(open + 1, close).split(',').map((o) => o.replace(/^[ \t]+/, '')).filter(Boolean)];
      } else if (defaults.length === 0) {
        result.warnings.push(`No options for ${exportPath} ${word}: suggest ${word}(sync) to avoid warning`);
      }
      for (const opt of options.slice(defaults.length)) {
        const bad = checkOption(opt, where);
        if (bad !== undefined) {
          result.errors.push(bad);
          return result;
        }
      }
      const client = host === '' ? '*' : host;
      if (!options.some((o) => o === 'subtree_check' || o === 'no_subtree_check')) {
        // nfs-utils 2.6 still says so (checked against Debian 12's exportfs).
        result.warnings.push(`${file} [${line}]: Neither 'subtree_check' or 'no_subtree_check' specified for export "${client}:${exportPath}".\n  Assuming default behaviour ('no_subtree_check').\n  NOTE: this default has changed since nfs-utils version 1.0.x\n`);
      }
      result.exports.push({ path: exportPath, client, options });
    }
  }
  return result;
}

// ---------------------------------------------------------------- the tools

function notInstalled(tool: string): never {
  throw new ToolExit(127, `bash: line 1: ${tool}: command not found\n`);
}

/** Export flags as exportfs -v prints them (nfs-utils 2.6 dump order), defaults filled in. */
function dumpOptions(options: readonly string[]): string {
  const has = (a: string, b: string, dflt: boolean) => {
    let v = dflt;
    for (const o of options) {
      if (o === a) v = true;
      else if (o === b) v = false;
    }
    return v;
  };
  const out = [has('async', 'sync', false) ? 'async' : 'sync', has('wdelay', 'no_wdelay', true) ? 'wdelay' : 'no_wdelay', has('nohide', 'hide', false) ? 'nohide' : 'hide'];
  if (has('crossmnt', 'nocrossmnt', false)) out.push('crossmnt');
  if (has('no_subtree_check', 'subtree_check', true)) out.push('no_subtree_check');
  if (has('insecure_locks', 'secure_locks', false) || has('no_auth_nlm', 'auth_nlm', false)) out.push('insecure_locks');
  for (const o of options) if (/^(fsid|anonuid|anongid|mountpoint|mp)=/.test(o)) out.push(o);
  const sec = options.filter((o) => o.startsWith('sec=')).pop() ?? 'sec=sys';
  out.push(sec, has('ro', 'rw', false) ? 'ro' : 'rw', has('insecure', 'secure', false) ? 'insecure' : 'secure', has('root_squash', 'no_root_squash', true) ? 'root_squash' : 'no_root_squash', has('all_squash', 'no_all_squash', false) ? 'all_squash' : 'no_all_squash');
  return out.join(',');
}

function exportFiles(hostRoot: string): string[] {
  const files = ['/etc/exports'];
  const dir = onHostRoot(hostRoot, '/etc/exports.d');
  try {
    for (const name of fs.readdirSync(dir).sort()) if (name.endsWith('.exports')) files.push(`/etc/exports.d/${name}`);
  } catch {
    // no exports.d: only /etc/exports
  }
  return files;
}

export function runExportfs(ctx: HostToolContext): void {
  if (!packageInstalled(ctx.root, 'nfs-kernel-server')) notInstalled('exportfs');
  const flags = new Set<string>();
  for (const arg of ctx.argv) {
    if (!/^-[a-zA-Z]+$/.test(arg)) throw new ToolExit(1, `simhost: exportfs ${arg} (exporting one host:/path) is not simulated\n`);
    for (const c of arg.slice(1)) {
      if (!'adfhioruvs'.includes(c)) throw new ToolExit(1, `exportfs: invalid option -- '${c}'\nusage: exportfs [-adfhioruvs] [host:/path]\n`);
      flags.add(c);
    }
  }
  if (flags.has('h')) throw new ToolExit(0, 'usage: exportfs [-adfhioruvs] [host:/path]\n');
  if (flags.has('r') || flags.has('a')) {
    const table: ActiveExport[] = [];
    let failed = false;
    for (const hostPath of exportFiles(ctx.hostRoot)) {
      const file = onHostRoot(ctx.hostRoot, hostPath);
      if (!fs.existsSync(file)) continue;
      const parsed = parseExports(fs.readFileSync(file, 'latin1'), hostPath);
      for (const w of parsed.warnings) ctx.err(`exportfs: ${w}\n`);
      for (const e of parsed.errors) ctx.err(`exportfs: ${e}\n`);
      if (parsed.errors.length > 0) failed = true;
      for (const ex of parsed.exports) {
        if (!fs.existsSync(onHostRoot(ctx.hostRoot, ex.path)) || !ex.path.startsWith('/')) {
          ctx.err(`exportfs: Failed to stat ${ex.path}: No such file or directory\n`);
          failed = true;
          continue;
        }
        if (table.some((t) => t.path === ex.path && t.client === ex.client)) {
          ctx.err(`exportfs: duplicated export entries:\nexportfs: \t${ex.path}\t${ex.client}(${ex.options.join(',')})\n`);
          failed = true;
          continue;
        }
        table.push(ex);
        if (flags.has('v')) ctx.out(`exporting ${ex.client}:${ex.path}\n`);
      }
    }
    atomicWrite(nfsFile(ctx.root), `${JSON.stringify({ exports: table }, null, 2)}\n`);
    if (failed) throw new ToolExit(1, '');
    return;
  }
  if (flags.has('u')) throw new ToolExit(1, 'simhost: exportfs -u is not simulated\n');
  // No action: print the active table.
  for (const ex of loadNfs(ctx.root).exports) {
    const opts = flags.has('v') || flags.has('s') ? `(${dumpOptions(ex.options)})` : '';
    if (flags.has('s')) ctx.out(`${ex.path}  ${ex.client}${opts}\n`);
    else if (ex.path.length > 14) ctx.out(`${ex.path}\n\t\t${ex.client}${opts}\n`);
    else ctx.out(`${ex.path.padEnd(14)}\t${ex.client}${opts}\n`);
  }
}

/** The names and addresses that reach this node: loopback, its name, the addresses of its interfaces files. */
function ownAddresses(root: string, hostRoot: string): Set<string> {
  const own = new Set(['127.0.0.1', 'localhost', '::1']);
  const node = readJson<{ node?: string }>(paths(root).hostFile, {}).node;
  if (node) own.add(node);
  const files = ['/etc/network/interfaces'];
  try {
    for (const name of fs.readdirSync(onHostRoot(hostRoot, '/etc/network/interfaces.d'))) files.push(`/etc/network/interfaces.d/${name}`);
  } catch {
    // none
  }
  for (const f of files) {
    let text = '';
    try {
      text = fs.readFileSync(onHostRoot(hostRoot, f), 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/^\s*address\s+([0-9.]+)/gm)) own.add(m[1]!);
  }
  return own;
}

/** What `showmount -e <server>` would answer: the table, or showmount's failure. */
export function servedExports(root: string, hostRoot: string, server: string): { exports: ActiveExport[] } | { error: string } {
  if (!ownAddresses(root, hostRoot).has(server)) return { error: 'clnt_create: RPC: Port mapper failure - Unable to receive: errno 113 (No route to host)' };
  const unit = loadServices(root).units['nfs-server.service'];
  if (!packageInstalled(root, 'nfs-kernel-server') || unit?.active !== 'active') return { error: 'clnt_create: RPC: Program not registered' };
  return { exports: loadNfs(root).exports };
}

export function runShowmount(ctx: HostToolContext): void {
  if (!packageInstalled(ctx.root, 'nfs-common')) notInstalled('showmount');
  const words = ctx.argv.filter((a) => !a.startsWith('-'));
  const flags = ctx.argv.filter((a) => a.startsWith('-'));
  if (!flags.some((f) => f === '-e' || f === '--exports')) throw new ToolExit(1, 'simhost: showmount without -e is not simulated\n');
  const host = words[0] ?? 'localhost';
  const served = servedExports(ctx.root, ctx.hostRoot, host);
  if ('error' in served) throw new ToolExit(1, `${served.error}\n`);
  const byPath = new Map<string, string[]>();
  for (const ex of served.exports) byPath.set(ex.path, [...(byPath.get(ex.path) ?? []), ex.client]);
  const width = Math.max(0, ...[...byPath.keys()].map((p) => p.length));
  let out = `Export list for ${host}:\n`;
  for (const [p, clients] of byPath) out += `${p.padEnd(width)} ${clients.includes('*') ? '(everyone)' : clients.join(',')}\n`;
  ctx.out(out);
}
