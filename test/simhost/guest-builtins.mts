// coreutils inside simulated guests, as far as orchestration scripts use
// them, acting as the subject of the exec (container root unless `setpriv`
// changed it) with the kernel's permission rules seen through the
// container's id maps (guestview.mts). Errors are worded as coreutils words
// them, with its exit codes.

import fs from 'node:fs';
import path from 'node:path';

import type { ExecResult, RunOptions } from './guestfs.mts';
import { ERRNO_TEXT, type Errno, type GuestFs } from './guestview.mts';
import { CT_ROOT, R_OK, W_OK, X_OK, type Subject } from './idmap.mts';
import { chownOne, mkdirAs, parseOwnerSpec, readAs, removable, tree, writeAs } from './guest-io.mts';

export { openForWrite, readAs, writeAs } from './guest-io.mts';

export type Builtin = (g: GuestFs, args: readonly string[], options: RunOptions) => ExecResult;

const ok = (stdout = ''): ExecResult => ({ exit: 0, stdout, stderr: '' });
const fail = (exit: number, stderr: string, stdout = ''): ExecResult => ({ exit, stdout, stderr });
const text = (errno: Errno): string => ERRNO_TEXT[errno];

export const subjectOf = (options: RunOptions): Subject => options.subject ?? CT_ROOT;

export const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findInPath(g: GuestFs, name: string): string | undefined {
  for (const dir of PATH_DIRS) {
    const candidate = `${dir}/${name}`;
    const st = g.stat(candidate);
    if (st?.isFile() && (st.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

export function flagsAndOperands(args: readonly string[]): { flags: Set<string>; operands: string[] } {
  const flags = new Set<string>();
  const operands: string[] = [];
  let endOfFlags = false;
  for (const a of args) {
    if (!endOfFlags && a === '--') {
      endOfFlags = true;
      continue;
    }
    if (!endOfFlags && /^-[a-zA-Z]+$/.test(a)) {
      for (const f of a.slice(1)) flags.add(f);
      continue;
    }
    if (!endOfFlags && /^--[a-z-]+$/.test(a)) {
      flags.add(a);
      continue;
    }
    operands.push(a);
  }
  return { flags, operands };
}

// ---------------------------------------------------------------------------
// test / [

export function testExpr(g: GuestFs, args: readonly string[], subject: Subject = CT_ROOT): boolean | undefined {
  if (args.length === 0) return false;
  if (args[0] === '!') {
    const inner = testExpr(g, args.slice(1), subject);
    return inner === undefined ? undefined : !inner;
  }
  if (args.length === 1) return args[0] !== '';
  if (args.length === 2) {
    const [op, operand] = args as [string, string];
    const fileOp = op.length === 2 && op.startsWith('-') && !['-n', '-z'].includes(op);
    const loc = fileOp ? g.locate(operand, { subject, follow: op !== '-L' && op !== '-h' }) : undefined;
    const st = loc && !loc.error ? loc.stat : undefined;
    switch (op) {
      case '-e':
        return st !== undefined;
      case '-f':
        return st?.isFile() ?? false;
      case '-d':
        return st?.isDirectory() ?? false;
      case '-s':
        return (st?.size ?? 0) > 0;
      case '-r':
        return st !== undefined && g.permits(subject, loc!.guest, st, R_OK);
      case '-w':
        return st !== undefined && g.permits(subject, loc!.guest, st, W_OK);
      case '-x':
        return st !== undefined && (st.mode & 0o111) !== 0 && g.permits(subject, loc!.guest, st, X_OK);
      case '-L':
      case '-h':
        return st?.isSymbolicLink() ?? false;
      case '-n':
        return operand !== '';
      case '-z':
        return operand === '';
      default:
        return undefined;
    }
  }
  if (args.length === 3) {
    const [a, op, b] = args as [string, string, string];
    if (op === '=' || op === '==') return a === b;
    if (op === '!=') return a !== b;
    const na = Number(a);
    const nb = Number(b);
    if (op === '-eq') return na === nb;
    if (op === '-ne') return na !== nb;
    if (op === '-lt') return na < nb;
    if (op === '-le') return na <= nb;
    if (op === '-gt') return na > nb;
    if (op === '-ge') return na >= nb;
  }
  return undefined;
}

export function parseMode(spec: string, current: number): number | undefined {
  if (/^[0-7]{1,4}$/.test(spec)) return parseInt(spec, 8);
  let mode = current;
  for (const clause of spec.split(',')) {
    const m = /^([ugoa]*)([+-=])([rwxXst]*)$/.exec(clause);
    if (!m) return undefined;
    const who = m[1] === '' || m[1]!.includes('a') ? 'ugo' : m[1]!;
    let bits = 0;
    for (const p of m[3]!) {
      const base = p === 'r' ? 4 : p === 'w' ? 2 : p === 'x' || p === 'X' ? 1 : 0;
      if (who.includes('u')) bits |= base << 6;
      if (who.includes('g')) bits |= base << 3;
      if (who.includes('o')) bits |= base;
    }
    if (m[2] === '+') mode |= bits;
    else if (m[2] === '-') mode &= ~bits;
    else mode = (mode & ~0o777) | bits;
  }
  return mode;
}

// ---------------------------------------------------------------------------
// The commands

export const builtins: Record<string, Builtin> = {
  true: () => ok(),
  false: () => fail(1, ''),
  test: (g, args, options) => {
    const result = testExpr(g, args, subjectOf(options));
    return result === undefined ? fail(2, `test: unknown operator\n`) : result ? ok() : fail(1, '');
  },
  '[': (g, args, options) => {
    if (args[args.length - 1] !== ']') return fail(2, `[: missing ']'\n`);
    const result = testExpr(g, args.slice(0, -1), subjectOf(options));
    return result === undefined ? fail(2, `[: unknown operator\n`) : result ? ok() : fail(1, '');
  },
  cat: (g, args, options) => {
    const { operands } = flagsAndOperands(args);
    let out = '';
    let err = '';
    if (operands.length === 0) return ok(options.stdin?.toString('latin1') ?? '');
    for (const file of operands) {
      if (file === '-') {
        out += options.stdin?.toString('latin1') ?? '';
        continue;
      }
      const data = readAs(g, subjectOf(options), file);
      if (typeof data === 'string') err += `cat: ${file}: ${text(data)}\n`;
      else out += data.toString('latin1');
    }
    return { exit: err ? 1 : 0, stdout: out, stderr: err };
  },
  tee: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const data = options.stdin ?? Buffer.alloc(0);
    let err = '';
    for (const file of operands) {
      const error = writeAs(g, subjectOf(options), file, data, flags.has('a'));
      if (error) err += `tee: ${file}: ${text(error)}\n`;
    }
    return { exit: err ? 1 : 0, stdout: data.toString('latin1'), stderr: err };
  },
  echo: (_g, args) => {
    const noNewline = args[0] === '-n';
    const words = noNewline ? args.slice(1) : args;
    return ok(`${words.join(' ')}${noNewline ? '' : '\n'}`);
  },
  mkdir: (g, args, options) => {
    let mode: number | undefined;
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-m' || a === '--mode') mode = parseMode(args[++i] ?? '', 0o755);
      else if (a.startsWith('--mode=')) mode = parseMode(a.slice(7), 0o755);
      else rest.push(a);
    }
    const { flags, operands } = flagsAndOperands(rest);
    const subject = subjectOf(options);
    let err = '';
    for (const dir of operands) {
      if (flags.has('p') || flags.has('--parents')) {
        const parts = path.posix.resolve('/', dir).split('/').filter(Boolean);
        for (let i = 1; i <= parts.length; i++) {
          const prefix = `/${parts.slice(0, i).join('/')}`;
          const loc = g.locate(prefix, { subject });
          if (loc.stat) {
            if (!loc.stat.isDirectory()) {
              err += `mkdir: cannot create directory '${dir}': ${i === parts.length ? text('EEXIST') : text('ENOTDIR')}\n`;
              break;
            }
            continue;
          }
          const error = mkdirAs(g, subject, prefix, i === parts.length ? mode : undefined);
          if (error) {
            err += `mkdir: cannot create directory '${i === parts.length ? dir : prefix}': ${text(error)}\n`;
            break;
          }
        }
        continue;
      }
      const error = mkdirAs(g, subject, dir, mode);
      if (error) err += `mkdir: cannot create directory '${dir}': ${text(error)}\n`;
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  rm: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const force = flags.has('f') || flags.has('--force');
    const recursive = flags.has('r') || flags.has('R') || flags.has('--recursive');
    const subject = subjectOf(options);
    let err = '';
    for (const file of operands) {
      const loc = g.locate(file, { subject, follow: false });
      if (loc.error && loc.error !== 'ENOENT') {
        err += `rm: cannot remove '${file}': ${text(loc.error)}\n`;
        continue;
      }
      if (!loc.stat) {
        if (!force) err += `rm: cannot remove '${file}': No such file or directory\n`;
        continue;
      }
      if (loc.stat.isDirectory() && !recursive) {
        err += `rm: cannot remove '${file}': Is a directory\n`;
        continue;
      }
      if (loc.guest === '/') {
        err += `rm: it is dangerous to operate recursively on '/'\n`;
        continue;
      }
      // Children first: each needs its own directory writable and searchable.
      if (loc.stat.isDirectory()) {
        const inner = tree(g, loc.guest).slice(1).reverse();
        const blocked = inner.map((child) => ({ child, error: removable(g, subject, g.locate(child, { follow: false })) })).find((r) => r.error);
        if (blocked) {
          err += `rm: cannot remove '${path.posix.join(file, path.posix.relative(loc.guest, blocked.child))}': ${text(blocked.error!)}\n`;
          continue;
        }
      }
      // A mount point itself cannot be removed (EBUSY); its contents can.
      // This also keeps a test's host directory from being deleted through a bind mount.
      if (g.mounts.some((m) => m.host === loc.host)) {
        for (const child of fs.readdirSync(loc.host)) fs.rmSync(path.join(loc.host, child), { recursive: true, force: true });
        err += `rm: cannot remove '${file}': Device or resource busy\n`;
        continue;
      }
      const denied = removable(g, subject, loc);
      if (denied) {
        err += `rm: cannot remove '${file}': ${text(denied)}\n`;
        continue;
      }
      fs.rmSync(loc.host, { recursive: true, force: true });
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  chmod: (g, args, options) => {
    // The mode may itself look like a flag (-x), so only the known flags are taken out.
    const recursive = args.includes('-R') || args.includes('--recursive');
    const [modeSpec, ...files] = args.filter((a) => !['-R', '--recursive', '-v', '-f', '--'].includes(a));
    if (modeSpec === undefined || files.length === 0) return fail(1, `chmod: missing operand\n`);
    const subject = subjectOf(options);
    let err = '';
    for (const file of files) {
      const top = g.locate(file, { subject });
      if (top.error || !top.stat) {
        err += `chmod: cannot access '${file}': ${text(top.error ?? 'ENOENT')}\n`;
        continue;
      }
      for (const each of recursive ? tree(g, top.guest) : [top.guest]) {
        const loc = g.locate(each, { subject });
        if (!loc.stat || loc.stat.isSymbolicLink()) continue;
        const mode = parseMode(modeSpec, loc.stat.mode & 0o7777);
        if (mode === undefined) return fail(1, `chmod: invalid mode: '${modeSpec}'\n`);
        // CAP_FOWNER over the inode, or being its owner.
        if (!g.owns(subject, loc) && !g.capable(subject, loc)) {
          err += `chmod: changing permissions of '${each === top.guest ? file : each}': ${text('EPERM')}\n`;
          continue;
        }
        fs.chmodSync(loc.host, mode);
      }
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  chown: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const [specText, ...files] = operands;
    if (specText === undefined || files.length === 0) return fail(1, `chown: missing operand\n`);
    const spec = parseOwnerSpec(g, specText);
    if (typeof spec === 'string') return fail(1, spec);
    const subject = subjectOf(options);
    let err = '';
    for (const file of files) {
      const top = g.locate(file, { subject });
      if (top.error || !top.stat) {
        err += `chown: cannot access '${file}': ${text(top.error ?? 'ENOENT')}\n`;
        continue;
      }
      const targets = flags.has('R') ? tree(g, top.guest) : [top.guest];
      for (const each of targets) err += chownOne(g, subject, each, spec, !flags.has('h') && each === top.guest).replace(`'${each}'`, `'${each === top.guest ? file : each}'`);
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  // install [-D] [-m MODE] [-o OWNER] [-g GROUP] SRC DEST: one file, as
  // orchestration copies files into VMs (SRC /dev/stdin: the exec's stdin).
  install: (g, args, options) => {
    const values: Record<string, string> = {};
    const operands: string[] = [];
    let makeParents = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-D') makeParents = true;
      else if (a === '-m' || a === '-o' || a === '-g') values[a] = args[++i] ?? '';
      else if (/^--mode=/.test(a)) values['-m'] = a.slice(7);
      else if (a.startsWith('-') && a !== '-') return fail(1, `install: unrecognised option '${a}' (not simulated)\n`);
      else operands.push(a);
    }
    const [src, dest] = operands;
    if (src === undefined || dest === undefined || operands.length !== 2) return fail(1, 'install: missing destination file operand (one SRC and one DEST are simulated)\n');
    const subject = subjectOf(options);
    const data = src === '/dev/stdin' || src === '-' ? (options.stdin ?? Buffer.alloc(0)) : readAs(g, subject, src);
    if (typeof data === 'string') return fail(1, `install: cannot stat '${src}': ${text(data)}\n`);
    if (makeParents) {
      let dir = '';
      for (const part of path.posix.dirname(path.posix.resolve('/', dest)).split('/').filter(Boolean)) {
        dir += `/${part}`;
        const error = mkdirAs(g, subject, dir, undefined);
        if (error && error !== 'EEXIST') return fail(1, `install: cannot create directory '${dir}': ${text(error)}\n`);
      }
    }
    const error = writeAs(g, subject, dest, data);
    if (error) return fail(1, `install: cannot create regular file '${dest}': ${text(error)}\n`);
    const loc = g.locate(dest, { subject });
    const mode = values['-m'] !== undefined ? parseInt(values['-m'], 8) : 0o755;
    if (Number.isNaN(mode)) return fail(1, `install: invalid mode '${values['-m']}'\n`);
    fs.chmodSync(loc.host, mode);
    if (values['-o'] !== undefined || values['-g'] !== undefined) {
      const spec = parseOwnerSpec(g, `${values['-o'] ?? ''}:${values['-g'] ?? ''}`);
      if (typeof spec === 'string') return fail(1, spec.replace(/^chown/, 'install'));
      const err = chownOne(g, subject, dest, spec, true);
      if (err) return fail(1, err.replace(/^chown/, 'install'));
    }
    return ok();
  },
  touch: (g, args, options) => {
    const { operands } = flagsAndOperands(args);
    const subject = subjectOf(options);
    let err = '';
    for (const file of operands) {
      const loc = g.locate(file, { subject });
      if (loc.stat) {
        // utimes(NULL): the owner, whoever may write it, or a capable root.
        if (!g.owns(subject, loc) && !g.permits(subject, loc.guest, loc.stat, W_OK)) {
          err += `touch: cannot touch '${file}': ${text('EACCES')}\n`;
          continue;
        }
        const now = new Date();
        fs.utimesSync(loc.host, now, now);
        continue;
      }
      const error = writeAs(g, subject, file, '', true);
      if (error) err += `touch: cannot touch '${file}': ${text(error)}\n`;
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  cp: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    if (operands.length < 2) return fail(1, `cp: missing destination file operand\n`);
    const dest = operands[operands.length - 1]!;
    const destSt = g.stat(dest);
    const subject = subjectOf(options);
    let err = '';
    for (const src of operands.slice(0, -1)) {
      const from = g.locate(src, { subject });
      if (from.error || !from.stat) {
        err += `cp: cannot stat '${src}': ${text(from.error ?? 'ENOENT')}\n`;
        continue;
      }
      const targetGuest = destSt?.isDirectory() ? path.posix.join(dest, path.posix.basename(src)) : dest;
      if (from.stat.isDirectory()) {
        if (!(flags.has('r') || flags.has('R') || flags.has('a'))) {
          err += `cp: -r not specified; omitting directory '${src}'\n`;
          continue;
        }
        const to = g.locate(targetGuest, { subject });
        const denied = to.error ?? (to.stat ? undefined : g.parentWritable(subject, to));
        if (denied) {
          err += `cp: cannot create directory '${targetGuest}': ${text(denied)}\n`;
          continue;
        }
        fs.cpSync(from.host, to.host, { recursive: true });
        if (!to.stat) for (const each of tree(g, targetGuest)) g.created(subject, g.locate(each, { follow: false }));
        continue;
      }
      const data = readAs(g, subject, src);
      if (typeof data === 'string') {
        err += `cp: cannot open '${src}' for reading: ${text(data)}\n`;
        continue;
      }
      const error = writeAs(g, subject, targetGuest, data);
      if (error) err += `cp: cannot create regular file '${targetGuest}': ${text(error)}\n`;
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  mv: (g, args, options) => {
    const { operands } = flagsAndOperands(args);
    if (operands.length < 2) return fail(1, `mv: missing destination file operand\n`);
    const dest = operands[operands.length - 1]!;
    const destSt = g.stat(dest);
    const subject = subjectOf(options);
    let err = '';
    for (const src of operands.slice(0, -1)) {
      const from = g.locate(src, { subject, follow: false });
      if (from.error || !from.stat) {
        err += `mv: cannot stat '${src}': ${text(from.error ?? 'ENOENT')}\n`;
        continue;
      }
      const to = g.locate(destSt?.isDirectory() ? path.posix.join(dest, path.posix.basename(src)) : dest, { subject });
      const denied = removable(g, subject, from) ?? to.error ?? g.parentWritable(subject, to);
      if (denied) {
        err += `mv: cannot move '${src}' to '${dest}': ${text(denied)}\n`;
        continue;
      }
      fs.renameSync(from.host, to.host);
      g.carryOwnership(from.mount, to);
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  ln: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    if (operands.length < 2) return fail(1, `ln: missing destination file operand after '${operands[0] ?? ''}'\n`);
    const [target, link] = operands as [string, string];
    const subject = subjectOf(options);
    const loc = g.locate(link, { subject, follow: false });
    if (loc.stat?.isDirectory() && !flags.has('n') && !flags.has('T')) return fail(1, `ln: unsupported: a directory as destination\n`);
    if (loc.stat) {
      if (!flags.has('f')) return fail(1, `ln: failed to create ${flags.has('s') ? 'symbolic ' : 'hard '}link '${link}': File exists\n`);
      const denied = removable(g, subject, loc);
      if (denied) return fail(1, `ln: cannot remove '${link}': ${text(denied)}\n`);
      fs.rmSync(loc.host, { force: true });
    }
    const denied = loc.error ?? g.parentWritable(subject, loc);
    if (denied) return fail(1, `ln: failed to create ${flags.has('s') ? 'symbolic ' : 'hard '}link '${link}': ${text(denied)}\n`);
    if (flags.has('s')) fs.symlinkSync(target, loc.host);
    else {
      const from = g.locate(target, { subject });
      if (!from.stat) return fail(1, `ln: failed to access '${target}': No such file or directory\n`);
      fs.linkSync(from.host, loc.host);
    }
    g.created(subject, { ...loc, stat: fs.lstatSync(loc.host) });
    return ok();
  },
  readlink: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const canonical = flags.has('f') || flags.has('e') || flags.has('m');
    let out = '';
    let status = 0;
    for (const file of operands) {
      const loc = g.locate(file, { subject: subjectOf(options), follow: canonical });
      if (canonical) {
        if (loc.error || (!loc.stat && !flags.has('m'))) status = 1;
        else out += `${loc.guest}\n`;
        continue;
      }
      if (!loc.stat?.isSymbolicLink()) {
        status = 1;
        continue;
      }
      out += `${fs.readlinkSync(loc.host)}\n`;
    }
    return { exit: status, stdout: out, stderr: '' };
  },
  ls: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const targets = operands.length ? operands : ['/'];
    const subject = subjectOf(options);
    let out = '';
    let err = '';
    for (const t of targets) {
      const loc = g.locate(t, { subject });
      if (loc.error || !loc.stat) {
        err += `ls: cannot access '${t}': ${text(loc.error ?? 'ENOENT')}\n`;
        continue;
      }
      if (loc.stat.isDirectory() && !g.permits(subject, loc.guest, loc.stat, R_OK)) {
        err += `ls: cannot open directory '${t}': ${text('EACCES')}\n`;
        continue;
      }
      const names = loc.stat.isDirectory() ? fs.readdirSync(loc.host).sort() : [t];
      const shown = flags.has('a') ? ['.', '..', ...names] : names.filter((n) => !n.startsWith('.'));
      out += shown.map((n) => `${n}\n`).join('');
    }
    return { exit: err ? 2 : 0, stdout: out, stderr: err };
  },
  which: (g, args) => {
    let status = 0;
    let out = '';
    for (const name of args.filter((a) => !a.startsWith('-'))) {
      const found = findInPath(g, name);
      if (found) out += `${found}\n`;
      else status = 1;
    }
    return { exit: status, stdout: out, stderr: '' };
  },
  hostname: (g) => {
    const st = g.stat('/etc/hostname');
    return ok(st ? fs.readFileSync(g.resolve('/etc/hostname'), 'utf8') : 'localhost\n');
  },
};
