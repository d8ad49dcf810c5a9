// `apparmor_parser` on the host: a parser for the subset of the profile
// language container profiles use, with the real parser's messages and
// exit status (1), and the profiles loaded in the kernel kept in
// host-apparmor.json { loaded: { "<profile>": "<sha256>" } }.
//
// Checked: includes (`include <x>`, `#include <x>`, `include if exists
// <x>`, `include "x"`; a directory includes its files), resolved in the -I
// directories then the base (-b, default /etc/apparmor.d under the host
// root); variable assignments (`=`, `+=`) only outside profiles; every
// variable used declared somewhere; profile blocks (`profile name
// [attachment] [flags=(…)] {`, `/path {`, hats) balanced; every rule ended
// by a comma. Not checked: what a rule grants (any words before the comma).
// Options: -Q/--skip-kernel-load (parse only), -K/--skip-cache, -r
// (replace), -a (add: refused when loaded), -R (remove: refused when not
// loaded), -I, -b, -W, -T, -v. No file: the profile is read from stdin.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { atomicWrite, readJson, ToolExit, withStateLock } from '../state.mts';
import { onHostRoot, type HostToolContext } from './context.mts';
import { readStdin } from './accounts.mts';
import { ensureApparmorTree } from './apparmor-tree.mts';

interface ApparmorState {
  loaded: Record<string, string>;
}

function stateFile(root: string): string {
  return path.join(root, 'host-apparmor.json');
}

export function loadApparmor(root: string): ApparmorState {
  return readJson<ApparmorState | null>(stateFile(root), null) ?? { loaded: {} };
}

const CACHE_NOTE = 'Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 compatibility patch.)\n';

interface SrcLine {
  text: string;
  line: number;
}

class ParseError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

interface ParseContext {
  searchDirs: string[];
  /** Declared variables (name → whether declared). */
  variables: Set<string>;
  used: Array<{ name: string; line: number }>;
  profiles: string[];
}

function resolveInclude(ctx: ParseContext, name: string, quoted: boolean, fromDir: string): string | undefined {
  const candidates = quoted ? [path.resolve(fromDir, name)] : ctx.searchDirs.map((d) => path.join(d, name));
  return candidates.find((c) => fs.existsSync(c));
}

/** The text with includes expanded; lines keep the number of the line in the top file that led to them. */
function expand(ctx: ParseContext, text: string, fromDir: string, topLine: number | undefined, depth: number): SrcLine[] {
  if (depth > 20) throw new ParseError(topLine ?? 1, 'Exceeded maximum include recursion depth');
  const out: SrcLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = topLine ?? i + 1;
    const m = /^\s*#?include\s+(if\s+exists\s+)?(?:<([^>]+)>|"([^"]+)")\s*$/.exec(raw);
    if (!m) {
      out.push({ text: raw, line });
      return;
    }
    const target = resolveInclude(ctx, (m[2] ?? m[3])!, m[3] !== undefined, fromDir);
    if (target === undefined) {
      if (m[1]) return;
      throw new ParseError(line, `Could not open '${m[2] ?? m[3]}'`);
    }
    const files = fs.statSync(target).isDirectory()
      ? fs.readdirSync(target).filter((f) => !f.startsWith('.') && !/\.dpkg-\w+$|~$/.test(f)).sort().map((f) => path.join(target, f)).filter((f) => fs.statSync(f).isFile())
      : [target];
    for (const file of files) out.push(...expand(ctx, fs.readFileSync(file, 'utf8'), path.dirname(file), line, depth + 1));
  });
  return out;
}

function useVariables(ctx: ParseContext, text: string, line: number): void {
  for (const m of text.matchAll(/@\{([A-Za-z0-9_]+)\}/g)) ctx.used.push({ name: m[1]!, line });
}

/** Parse the expanded lines; throws ParseError at the first problem. */
function parse(ctx: ParseContext, lines: SrcLine[]): void {
  let depth = 0;
  let pending: { text: string; line: number } | undefined;
  let lastLine = 1;
  for (const { text: raw, line } of lines) {
    lastLine = line;
    const text = raw.replace(/(^|\s)#.*$/, '').trim();
    if (text === '') continue;
    const statement = pending ? `${pending.text} ${text}` : text;
    const assign = /^@\{([A-Za-z0-9_]+)\}\s*(\+?=)\s*(.*)$/.exec(statement);
    if (assign) {
      if (depth > 0) throw new ParseError(line, 'syntax error, unexpected TOK_EQUALS, expecting TOK_END_OF_RULE');
      if (assign[3]!.trim() === '') throw new ParseError(line, 'syntax error, unexpected TOK_END_OF_RULE');
      if (assign[2] === '+=' && !ctx.variables.has(assign[1]!)) throw new ParseError(line, `variable @{${assign[1]}} was not previously declared`);
      ctx.variables.add(assign[1]!);
      useVariables(ctx, assign[3]!, line);
      pending = undefined;
      continue;
    }
    if (text === '}') {
      if (pending) throw new ParseError(line, 'syntax error, unexpected TOK_CLOSE, expecting TOK_END_OF_RULE');
      if (depth === 0) throw new ParseError(line, 'syntax error, unexpected TOK_CLOSE');
      depth -= 1;
      continue;
    }
    if (statement.endsWith('{')) {
      const head = statement.slice(0, -1).trim();
      const profile = /^(?:profile\s+(\S+)|hat\s+(\S+)|\^(\S+)|(\/\S*|@\{\w+\}\S*|"[^"]*"))(?:\s+(\/\S*|@\{\w+\}\S*))?(?:\s+(?:flags\s*=\s*)?\(([^)]*)\))?$/.exec(head);
      if (!profile) throw new ParseError(line, `syntax error, unexpected TOK_OPEN${depth === 0 ? '' : ', expecting TOK_END_OF_RULE'}`);
      const flags = profile[6];
      for (const flag of flags?.split(/[\s,]+/).filter(Boolean) ?? []) {
        if (!/^(complain|enforce|kill|unconfined|audit|mediate_deleted|attach_disconnected|chroot_relative|namespace_relative|no_attach_disconnected|attach_disconnected\.path=.*)$/.test(flag)) throw new ParseError(line, `Invalid profile flag: ${flag}.`);
      }
      useVariables(ctx, head, line);
      if (depth === 0) ctx.profiles.push((profile[1] ?? profile[4] ?? '').replace(/^"|"$/g, ''));
      depth += 1;
      pending = undefined;
      continue;
    }
    if (depth === 0 && /^(abi\s+<[^>]+>|alias\s+\S+\s*->\s*\S+)\s*,$/.test(statement)) {
      pending = undefined;
      continue;
    }
    if (depth === 0) throw new ParseError(line, `syntax error, unexpected TOK_ID, expecting $end`);
    if (statement.endsWith(',')) {
      useVariables(ctx, statement, line);
      pending = undefined;
    } else pending = { text: statement, line };
  }
  if (pending || depth > 0) throw new ParseError(lastLine, 'syntax error, unexpected $end, expecting TOK_CLOSE');
  for (const use of ctx.used) if (!ctx.variables.has(use.name) && use.name !== 'profile_name') throw new ParseError(use.line, `Found reference to variable ${use.name}, but is never declared`);
}

export function runApparmorParser(ctx: HostToolContext): void {
  let action: 'add' | 'replace' | 'remove' = 'add';
  let skipLoad = false;
  const includeDirs: string[] = [];
  let base = onHostRoot(ctx.hostRoot, '/etc/apparmor.d');
  const files: string[] = [];
  const mapPath = (p: string) => (path.isAbsolute(p) && (p === ctx.hostRoot || p.startsWith(`${ctx.hostRoot}/`)) ? p : path.isAbsolute(p) ? onHostRoot(ctx.hostRoot, p) : path.resolve(p));
  for (let i = 0; i < ctx.argv.length; i++) {
    const arg = ctx.argv[i]!;
    if (arg === '-Q' || arg === '--skip-kernel-load') skipLoad = true;
    else if (arg === '-K' || arg === '--skip-cache' || arg === '-W' || arg === '--write-cache' || arg === '-T' || arg === '--skip-read-cache' || arg === '-v' || arg === '--verbose' || arg === '-q' || arg === '--quiet') continue;
    else if (arg === '-r' || arg === '--replace') action = 'replace';
    else if (arg === '-a' || arg === '--add') action = 'add';
    else if (arg === '-R' || arg === '--remove') action = 'remove';
    else if (arg === '-I' || arg === '--Include') includeDirs.push(mapPath(ctx.argv[++i] ?? ''));
    else if (arg === '-b' || arg === '--base') base = mapPath(ctx.argv[++i] ?? '');
    else if (arg.startsWith('-')) throw new ToolExit(1, `${'apparmor_parser'}: unrecognized option '${arg}'\n`);
    else files.push(arg);
  }
  withStateLock(ctx.root, () => {
    ensureApparmorTree(ctx.hostRoot);
    const state = loadApparmor(ctx.root);
    const sources = files.length === 0 ? [{ name: undefined, text: readStdin() }] : files.map((f) => ({ name: f, file: mapPath(f) }));
    let changed = false;
    for (const source of sources) {
      let text: string;
      if ('file' in source) {
        if (!fs.existsSync(source.file!)) throw new ToolExit(1, `File ${source.name} not found, skipping...\n`);
        text = fs.readFileSync(source.file!, 'utf8');
      } else text = source.text!;
      const pctx: ParseContext = { searchDirs: [...includeDirs, base], variables: new Set(), used: [], profiles: [] };
      try {
        parse(pctx, expand(pctx, text, 'file' in source ? path.dirname(source.file!) : process.cwd(), undefined, 0));
      } catch (err) {
        if (!(err instanceof ParseError)) throw err;
        const where = source.name === undefined ? '' : ` for ${source.name} in profile ${source.name}`;
        throw new ToolExit(1, `${skipLoad ? CACHE_NOTE : ''}AppArmor parser error${where} at line ${err.line}: ${err.message}\n`);
      }
      if (skipLoad) continue;
      const hash = crypto.createHash('sha256').update(text).digest('hex');
      for (const name of pctx.profiles) {
        if (action === 'remove') {
          if (state.loaded[name] === undefined) throw new ToolExit(1, `apparmor_parser: Unable to remove "${name}".  Profile doesn't exist\n`);
          delete state.loaded[name];
        } else if (action === 'add' && state.loaded[name] !== undefined) {
          throw new ToolExit(1, `apparmor_parser: Unable to add "${name}".  Profile already exists\n`);
        } else state.loaded[name] = hash;
        changed = true;
      }
    }
    if (skipLoad) ctx.err(CACHE_NOTE);
    if (changed) atomicWrite(stateFile(ctx.root), `${JSON.stringify(state, null, 2)}\n`);
  });
}
