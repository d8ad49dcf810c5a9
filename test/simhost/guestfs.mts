// A guest's file tree (<state>/guests/<id>/fs) and the commands the
// simulator understands inside it (`pct exec`, `qm guest exec`).
//
// Programs are not run: a guest is a directory, not a machine. What is
// modelled is what orchestration code relies on: files pushed and pulled,
// `test -f/-d/-e/-x`, `cat`, `mkdir -p`, `rm`, `chmod`, `touch`, `cp`, `mv`,
// `ls`, `echo`, `true`/`false`, `command -v` inside a shell, simple
// `sh -c`/`bash -c` command lines (&&, ||, ;, > and >> redirections) and
// scripts fed on stdin (`bash -s`), which succeed unless a test scripted
// otherwise in inject.json. A program named by path must exist and be
// executable in the tree (exit 127/126 otherwise, as lxc-attach reports);
// any other program name exits 0 and is only recorded. `command` itself is
// a shell builtin with no binary behind it, so `pct exec <id> -- command -v x`
// fails exactly as it does on a real host.

import fs from 'node:fs';
import path from 'node:path';

import { paths } from './state.mts';

export interface ExecResult {
  exit: number;
  stdout: string;
  stderr: string;
}

export function guestDir(root: string, vmid: string): string {
  return path.join(paths(root).guests, vmid);
}

export function guestFsDir(root: string, vmid: string): string {
  return path.join(guestDir(root, vmid), 'fs');
}

/** A bind mount whose host directory exists: guest paths below `guest` live on the host. */
export interface HostMount {
  guest: string;
  host: string;
}

export class GuestFs {
  readonly base: string;
  readonly mounts: HostMount[];

  constructor(base: string, mounts: HostMount[] = []) {
    this.base = base;
    // Longest guest path first, so nested mounts win.
    this.mounts = mounts.map((m) => ({ guest: path.posix.resolve('/', m.guest), host: path.resolve(m.host) })).sort((a, b) => b.guest.length - a.guest.length);
  }

  /** Map a guest path (absolute, or relative to /) to a host path inside the tree. */
  resolve(guestPath: string, cwd = '/'): string {
    const normal = path.posix.resolve(cwd, guestPath);
    for (const mount of this.mounts) {
      if (normal === mount.guest || normal.startsWith(`${mount.guest}/`)) {
        return path.join(mount.host, normal.slice(mount.guest.length));
      }
    }
    return path.join(this.base, normal);
  }

  stat(guestPath: string): fs.Stats | undefined {
    try {
      return fs.statSync(this.resolve(guestPath));
    } catch {
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------
// What a fresh guest looks like. Enough of a distribution for `command -v`,
// `test -x` and the files scripts read; contents are placeholders.

const commonBins = ['ls', 'cat', 'cp', 'mv', 'rm', 'mkdir', 'chmod', 'chown', 'ln', 'test', 'sed', 'grep', 'tar', 'gzip', 'sleep', 'env', 'id', 'hostname', 'find', 'awk'];

interface Distro {
  osRelease: string;
  shells: string[];
  bins: string[];
}

const distros: Record<string, Distro> = {
  ubuntu: {
    osRelease: 'PRETTY_NAME="Ubuntu 24.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n',
    shells: ['/usr/bin/bash', '/usr/bin/sh', '/bin/bash', '/bin/sh'],
    bins: [...commonBins, 'apt', 'apt-get', 'dpkg', 'systemctl', 'journalctl', 'update-ca-certificates', 'ip', 'ping', 'which', 'wget', 'perl', 'openssl'],
  },
  debian: {
    osRelease: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
    shells: ['/usr/bin/bash', '/usr/bin/sh', '/bin/bash', '/bin/sh'],
    bins: [...commonBins, 'apt', 'apt-get', 'dpkg', 'systemctl', 'journalctl', 'update-ca-certificates', 'ip', 'ping', 'which', 'wget', 'perl', 'openssl'],
  },
  alpine: {
    osRelease: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
    shells: ['/bin/sh', '/bin/ash'],
    bins: [...commonBins, 'apk', 'ip', 'ping', 'which', 'wget'],
  },
};

export function distroFor(templateName: string): string {
  const base = path.posix.basename(templateName).toLowerCase();
  if (base.startsWith('debian')) return 'debian';
  if (base.startsWith('alpine')) return 'alpine';
  return 'ubuntu';
}

/** Lay down the base tree of a new guest; `cloud` adds what a cloud image ships (cloud-init, the agent). */
export function populateGuest(root: string, vmid: string, distro: string, hostname: string, cloud = false): void {
  const fsDir = guestFsDir(root, vmid);
  const spec = distros[distro] ?? distros.ubuntu!;
  for (const dir of ['tmp', 'root', 'etc/systemd/system', 'usr/local/bin', 'usr/local/share/ca-certificates', 'var/log', 'var/lib', 'home', 'opt', 'usr/sbin', 'sbin']) {
    fs.mkdirSync(path.join(fsDir, dir), { recursive: true });
  }
  fs.chmodSync(path.join(fsDir, 'tmp'), 0o1777);
  const write = (rel: string, content: string, mode = 0o644) => {
    const file = path.join(fsDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    fs.chmodSync(file, mode);
  };
  write('etc/os-release', spec.osRelease);
  write('etc/hostname', `${hostname}\n`);
  write('etc/hosts', `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n`);
  write('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  write('etc/group', 'root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n');
  for (const shell of spec.shells) write(shell.slice(1), '', 0o755);
  const bins = [...spec.bins, ...(cloud ? ['cloud-init', 'qemu-ga', 'mount', 'umount'] : [])];
  for (const bin of bins) write(`usr/bin/${bin}`, '', 0o755);
}

export function removeGuestTree(root: string, vmid: string): void {
  fs.rmSync(guestDir(root, vmid), { recursive: true, force: true });
}

export function copyGuestTree(root: string, from: string, to: string): void {
  const src = guestFsDir(root, from);
  const dst = guestFsDir(root, to);
  fs.rmSync(guestDir(root, to), { recursive: true, force: true });
  if (fs.existsSync(src)) fs.cpSync(src, dst, { recursive: true, preserveTimestamps: true });
  else fs.mkdirSync(dst, { recursive: true });
}

function snapshotDir(root: string, vmid: string, snap: string): string {
  return path.join(guestDir(root, vmid), 'snapshots', snap);
}

export function snapshotGuestTree(root: string, vmid: string, snap: string): void {
  const dst = snapshotDir(root, vmid, snap);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const src = guestFsDir(root, vmid);
  if (fs.existsSync(src)) fs.cpSync(src, dst, { recursive: true, preserveTimestamps: true });
  else fs.mkdirSync(dst, { recursive: true });
}

export function rollbackGuestTree(root: string, vmid: string, snap: string): void {
  const src = snapshotDir(root, vmid, snap);
  const dst = guestFsDir(root, vmid);
  fs.rmSync(dst, { recursive: true, force: true });
  if (fs.existsSync(src)) fs.cpSync(src, dst, { recursive: true, preserveTimestamps: true });
  else fs.mkdirSync(dst, { recursive: true });
}

export function deleteGuestSnapshotTree(root: string, vmid: string, snap: string): void {
  fs.rmSync(snapshotDir(root, vmid, snap), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Running commands

const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface RunOptions {
  /** How a failed exec of a missing program is reported. */
  launcher: 'lxc-attach' | 'qemu-ga';
  vmid: string;
  stdin?: Buffer;
  /** Inside a shell builtins like `command` exist; as a bare exec they do not. */
  inShell?: boolean;
  /** The simulator's state directory, for programs whose state outlives one guest (a swarm, a CA). */
  root?: string;
}

/**
 * A program the simulator emulates inside guests (step, docker, ...), by
 * its base name. Each lives in its own module under `programs/` and is
 * registered in `programs/index.mts`; an unregistered name still succeeds
 * and is only recorded.
 */
export type GuestProgram = (g: GuestFs, args: readonly string[], options: RunOptions) => ExecResult;
export const guestPrograms: Record<string, GuestProgram> = {};

/**
 * Scripts sent on stdin (`bash -s -- args`) are not interpreted; a hook may
 * still model a lasting effect of one that succeeded (programs/packages.mts
 * records what its apt lines install).
 */
export type StdinScriptHook = (g: GuestFs, script: string, args: readonly string[]) => void;
export const stdinScriptHooks: StdinScriptHook[] = [];

const ok = (stdout = ''): ExecResult => ({ exit: 0, stdout, stderr: '' });
const fail = (exit: number, stderr: string, stdout = ''): ExecResult => ({ exit, stdout, stderr });

function findInPath(g: GuestFs, name: string): string | undefined {
  for (const dir of PATH_DIRS) {
    const candidate = `${dir}/${name}`;
    const st = g.stat(candidate);
    if (st?.isFile() && (st.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

function execFailure(options: RunOptions, program: string, errno: 'ENOENT' | 'EACCES'): ExecResult {
  const reason = errno === 'ENOENT' ? 'No such file or directory' : 'Permission denied';
  if (options.launcher === 'qemu-ga') {
    // The agent reports a failed spawn as an error of the exec call itself.
    return fail(-1, `Agent error: Failed to execute child process “${program}” (${reason})\n`);
  }
  return fail(errno === 'ENOENT' ? 127 : 126, `lxc-attach: ${options.vmid}: attach.c: lxc_attach_run_command: ${reason} - Failed to exec "${program}"\n`);
}

export function runCommand(g: GuestFs, argv: readonly string[], options: RunOptions): ExecResult {
  const [program, ...args] = argv;
  if (program === undefined) return fail(255, 'missing command\n');
  const name = path.posix.basename(program);

  if (name === 'bash' || name === 'sh' || name === 'dash' || name === 'ash') {
    const present = program.includes('/') ? g.stat(program)?.isFile() === true : findInPath(g, name) !== undefined;
    if (!present) return execFailure(options, program, 'ENOENT');
    return runShell(g, args, options);
  }
  if (name === 'command' && !program.includes('/')) {
    if (!options.inShell) return execFailure(options, program, 'ENOENT');
    return commandV(g, args);
  }
  const builtin = builtins[name];
  if (builtin && !program.includes('/')) return builtin(g, args, options);
  if (program.includes('/')) {
    const st = g.stat(program);
    if (!st || st.isDirectory()) return execFailure(options, program, st ? 'EACCES' : 'ENOENT');
    if ((st.mode & 0o111) === 0) return execFailure(options, program, 'EACCES');
    if (builtin) return builtin(g, args, options);
    const emulatedByPath = guestPrograms[name];
    if (emulatedByPath) return emulatedByPath(g, args, options);
    return ok();
  }
  const emulated = guestPrograms[name];
  if (emulated) return emulated(g, args, options);
  // The tree is sparse (what apt would install is not modelled), so an
  // unknown program name succeeds and is only recorded.
  return ok();
}

function runShell(g: GuestFs, args: readonly string[], options: RunOptions): ExecResult {
  let i = 0;
  let command: string | undefined;
  while (i < args.length) {
    const a = args[i]!;
    if (a === '-c') {
      command = args[i + 1];
      break;
    }
    if (a === '-s') break;
    if (a === '--') break;
    if (/^-[a-zA-Z]+$/.test(a)) {
      if (a.includes('c')) {
        command = args[i + 1];
        break;
      }
      if (a.includes('s')) break;
      i++;
      continue;
    }
    // `bash script.sh args`: run a script file from the tree
    if (!g.stat(a)?.isFile()) return fail(127, `bash: ${a}: No such file or directory\n`);
    return ok();
  }
  // bash -s (or no arguments): the script comes on stdin and is not interpreted.
  if (command === undefined) {
    if (options.stdin && stdinScriptHooks.length > 0) {
      const rest = args.slice(i + 1);
      const scriptArgs = rest[0] === '--' ? rest.slice(1) : rest;
      const script = options.stdin.toString('utf8');
      for (const hook of stdinScriptHooks) hook(g, script, scriptArgs);
    }
    return ok();
  }
  return runCommandLine(g, command, options);
}

// ---------------------------------------------------------------------------
// A very small shell: words, quotes, && || ; and > >> 2> redirections. Anything
// beyond that (pipes, substitutions, variables, globs) is not interpreted and
// the line succeeds, as any other unmodelled program does.

type Token = { word: string } | { op: string };

function tokenize(line: string): Token[] | undefined {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    const two = line.slice(i, i + 2);
    if (two === '&&' || two === '||' || two === '>>' || two === '2>') {
      if (two === '2>' && line[i + 2] === '&') return undefined;
      tokens.push({ op: two === '2>' && line[i + 2] === '>' ? '2>>' : two });
      i += two === '2>' && line[i + 2] === '>' ? 3 : 2;
      continue;
    }
    if (c === ';' || c === '>') {
      tokens.push({ op: c });
      i++;
      continue;
    }
    if ('|&<()`$*?[]{}~'.includes(c)) return undefined;
    let word = '';
    while (i < line.length && !' \t\n;&|<>()'.includes(line[i]!)) {
      const ch = line[i]!;
      if (ch === "'") {
        const end = line.indexOf("'", i + 1);
        if (end === -1) return undefined;
        word += line.slice(i + 1, end);
        i = end + 1;
      } else if (ch === '"') {
        let j = i + 1;
        while (j < line.length && line[j] !== '"') {
          if (line[j] === '\\' && j + 1 < line.length) {
            word += line[j + 1];
            j += 2;
            continue;
          }
          if (line[j] === '$' || line[j] === '`') return undefined;
          word += line[j];
          j++;
        }
        if (j >= line.length) return undefined;
        i = j + 1;
      } else if (ch === '\\') {
        word += line[i + 1] ?? '';
        i += 2;
      } else if ('`$*?[]{}~'.includes(ch)) {
        return undefined;
      } else {
        word += ch;
        i++;
      }
    }
    tokens.push({ word });
  }
  return tokens;
}

interface SimpleCommand {
  argv: string[];
  stdout?: { file: string; append: boolean };
  stderr?: { file: string; append: boolean };
}

function runCommandLine(g: GuestFs, line: string, options: RunOptions): ExecResult {
  const tokens = tokenize(line);
  if (!tokens) return ok();
  // Split into (connector, command) pairs.
  const steps: Array<{ connector: string; cmd: SimpleCommand }> = [];
  let current: SimpleCommand = { argv: [] };
  let connector = ';';
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if ('word' in t) {
      current.argv.push(t.word);
      continue;
    }
    if (t.op === '>' || t.op === '>>' || t.op === '2>' || t.op === '2>>') {
      const target = tokens[i + 1];
      if (!target || !('word' in target)) return fail(2, `sh: syntax error near unexpected token\n`);
      const redirect = { file: target.word, append: t.op.endsWith('>>') };
      if (t.op.startsWith('2')) current.stderr = redirect;
      else current.stdout = redirect;
      i++;
      continue;
    }
    steps.push({ connector, cmd: current });
    connector = t.op;
    current = { argv: [] };
  }
  steps.push({ connector, cmd: current });

  let last: ExecResult = ok();
  let stdout = '';
  let stderr = '';
  for (const { connector: conn, cmd } of steps) {
    if (cmd.argv.length === 0) continue;
    if (conn === '&&' && last.exit !== 0) continue;
    if (conn === '||' && last.exit === 0) continue;
    const result = runCommand(g, cmd.argv, { ...options, inShell: true, stdin: undefined });
    const exitCode = result.exit < 0 ? 127 : result.exit;
    let out = result.stdout;
    let err = result.stderr;
    if (cmd.stdout && !redirect(g, cmd.stdout, out)) {
      err += `sh: 1: cannot create ${cmd.stdout.file}: Directory nonexistent\n`;
      last = { exit: 2, stdout: '', stderr: '' };
      stderr += err;
      continue;
    }
    if (cmd.stdout) out = '';
    if (cmd.stderr && redirect(g, cmd.stderr, err)) err = '';
    stdout += out;
    stderr += err;
    last = { exit: exitCode, stdout: '', stderr: '' };
  }
  return { exit: last.exit, stdout, stderr };
}

function redirect(g: GuestFs, target: { file: string; append: boolean }, data: string): boolean {
  if (target.file === '/dev/null') return true;
  const file = g.resolve(target.file);
  if (!fs.existsSync(path.dirname(file))) return false;
  if (target.append) fs.appendFileSync(file, data);
  else fs.writeFileSync(file, data);
  return true;
}

// ---------------------------------------------------------------------------
// Builtins (coreutils as far as orchestration scripts use them)

type Builtin = (g: GuestFs, args: readonly string[], options: RunOptions) => ExecResult;

function flagsAndOperands(args: readonly string[]): { flags: Set<string>; operands: string[] } {
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

function testExpr(g: GuestFs, args: readonly string[]): boolean | undefined {
  if (args.length === 0) return false;
  if (args[0] === '!') {
    const inner = testExpr(g, args.slice(1));
    return inner === undefined ? undefined : !inner;
  }
  if (args.length === 1) return args[0] !== '';
  if (args.length === 2) {
    const [op, operand] = args as [string, string];
    const st = op.length === 2 && op.startsWith('-') && !['-n', '-z'].includes(op) ? g.stat(operand) : undefined;
    switch (op) {
      case '-e':
        return st !== undefined;
      case '-f':
        return st?.isFile() ?? false;
      case '-d':
        return st?.isDirectory() ?? false;
      case '-s':
        return (st?.size ?? 0) > 0;
      case '-x':
        return st !== undefined && (st.mode & 0o111) !== 0;
      case '-r':
      case '-w':
        return st !== undefined;
      case '-L':
      case '-h':
        try {
          return fs.lstatSync(g.resolve(operand)).isSymbolicLink();
        } catch {
          return false;
        }
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

function parseMode(spec: string, current: number): number | undefined {
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

function walk(file: string, fn: (p: string) => void): void {
  fn(file);
  const st = fs.lstatSync(file);
  if (st.isDirectory()) for (const child of fs.readdirSync(file)) walk(path.join(file, child), fn);
}

function commandV(g: GuestFs, args: readonly string[]): ExecResult {
  const { flags, operands } = flagsAndOperands(args);
  if (!flags.has('v') && !flags.has('V')) return ok();
  let status = 0;
  let out = '';
  for (const name of operands) {
    if (['cd', 'echo', 'test', '[', 'true', 'false', 'printf', 'command', 'type', 'export', 'set'].includes(name)) {
      out += `${name}\n`;
      continue;
    }
    const found = name.includes('/') ? (g.stat(name)?.isFile() ? name : undefined) : findInPath(g, name);
    if (found) out += `${found}\n`;
    else status = 1;
  }
  return { exit: status, stdout: out, stderr: '' };
}

const builtins: Record<string, Builtin> = {
  true: () => ok(),
  false: () => fail(1, ''),
  test: (g, args) => {
    const result = testExpr(g, args);
    return result === undefined ? fail(2, `test: unknown operator\n`) : result ? ok() : fail(1, '');
  },
  '[': (g, args) => {
    if (args[args.length - 1] !== ']') return fail(2, `[: missing ']'\n`);
    const result = testExpr(g, args.slice(0, -1));
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
      const st = g.stat(file);
      if (!st) err += `cat: ${file}: No such file or directory\n`;
      else if (st.isDirectory()) err += `cat: ${file}: Is a directory\n`;
      else out += fs.readFileSync(g.resolve(file), 'latin1');
    }
    return { exit: err ? 1 : 0, stdout: out, stderr: err };
  },
  tee: (g, args, options) => {
    const { flags, operands } = flagsAndOperands(args);
    const data = options.stdin ?? Buffer.alloc(0);
    let err = '';
    for (const file of operands) {
      const target = g.resolve(file);
      if (!fs.existsSync(path.dirname(target))) {
        err += `tee: ${file}: No such file or directory\n`;
        continue;
      }
      if (flags.has('a')) fs.appendFileSync(target, data);
      else fs.writeFileSync(target, data);
    }
    return { exit: err ? 1 : 0, stdout: data.toString('latin1'), stderr: err };
  },
  echo: (_g, args) => {
    const noNewline = args[0] === '-n';
    const words = noNewline ? args.slice(1) : args;
    return ok(`${words.join(' ')}${noNewline ? '' : '\n'}`);
  },
  mkdir: (g, args) => {
    const { flags, operands } = flagsAndOperands(args.filter((a, i) => a !== '-m' && args[i - 1] !== '-m'));
    let err = '';
    for (const dir of operands) {
      const target = g.resolve(dir);
      if (flags.has('p') || flags.has('--parents')) {
        const st = g.stat(dir);
        if (st && !st.isDirectory()) err += `mkdir: cannot create directory '${dir}': File exists\n`;
        else fs.mkdirSync(target, { recursive: true });
        continue;
      }
      if (g.stat(dir)) err += `mkdir: cannot create directory '${dir}': File exists\n`;
      else if (!fs.existsSync(path.dirname(target))) err += `mkdir: cannot create directory '${dir}': No such file or directory\n`;
      else fs.mkdirSync(target);
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  rm: (g, args) => {
    const { flags, operands } = flagsAndOperands(args);
    const force = flags.has('f') || flags.has('--force');
    const recursive = flags.has('r') || flags.has('R') || flags.has('--recursive');
    let err = '';
    for (const file of operands) {
      const target = g.resolve(file);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(target);
      } catch {
        if (!force) err += `rm: cannot remove '${file}': No such file or directory\n`;
        continue;
      }
      if (st.isDirectory() && !recursive) {
        err += `rm: cannot remove '${file}': Is a directory\n`;
        continue;
      }
      if (path.posix.resolve('/', file) === '/') {
        err += `rm: it is dangerous to operate recursively on '/'\n`;
        continue;
      }
      // A mount point itself cannot be removed (EBUSY); its contents can.
      // This also keeps a test's host directory from being deleted through a bind mount.
      if (g.mounts.some((m) => m.host === target)) {
        for (const child of fs.readdirSync(target)) fs.rmSync(path.join(target, child), { recursive: true, force: true });
        err += `rm: cannot remove '${file}': Device or resource busy\n`;
        continue;
      }
      fs.rmSync(target, { recursive: true, force: true });
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  chmod: (g, args) => {
    // The mode may itself look like a flag (-x), so only the known flags are taken out.
    const recursive = args.includes('-R') || args.includes('--recursive');
    const [modeSpec, ...files] = args.filter((a) => !['-R', '--recursive', '-v', '-f', '--'].includes(a));
    if (modeSpec === undefined || files.length === 0) return fail(1, `chmod: missing operand\n`);
    let err = '';
    for (const file of files) {
      const target = g.resolve(file);
      if (!fs.existsSync(target)) {
        err += `chmod: cannot access '${file}': No such file or directory\n`;
        continue;
      }
      const apply = (p: string) => {
        const mode = parseMode(modeSpec, fs.statSync(p).mode & 0o7777);
        if (mode === undefined) throw new Error(`chmod: invalid mode: '${modeSpec}'`);
        fs.chmodSync(p, mode);
      };
      try {
        if (recursive) walk(target, apply);
        else apply(target);
      } catch (error) {
        return fail(1, `${(error as Error).message}\n`);
      }
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  chown: (g, args) => {
    // Ownership is not modelled (the simulator runs unprivileged); only the target's existence is.
    const { operands } = flagsAndOperands(args);
    let err = '';
    for (const file of operands.slice(1)) if (!g.stat(file)) err += `chown: cannot access '${file}': No such file or directory\n`;
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  touch: (g, args) => {
    const { operands } = flagsAndOperands(args);
    let err = '';
    for (const file of operands) {
      const target = g.resolve(file);
      if (!fs.existsSync(path.dirname(target))) {
        err += `touch: cannot touch '${file}': No such file or directory\n`;
        continue;
      }
      const now = new Date();
      if (fs.existsSync(target)) fs.utimesSync(target, now, now);
      else fs.writeFileSync(target, '');
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  cp: (g, args) => {
    const { flags, operands } = flagsAndOperands(args);
    if (operands.length < 2) return fail(1, `cp: missing destination file operand\n`);
    const dest = operands[operands.length - 1]!;
    const destSt = g.stat(dest);
    let err = '';
    for (const src of operands.slice(0, -1)) {
      const st = g.stat(src);
      if (!st) {
        err += `cp: cannot stat '${src}': No such file or directory\n`;
        continue;
      }
      if (st.isDirectory() && !(flags.has('r') || flags.has('R') || flags.has('a'))) {
        err += `cp: -r not specified; omitting directory '${src}'\n`;
        continue;
      }
      const target = destSt?.isDirectory() ? g.resolve(path.posix.join(dest, path.posix.basename(src))) : g.resolve(dest);
      if (!fs.existsSync(path.dirname(target))) {
        err += `cp: cannot create regular file '${dest}': No such file or directory\n`;
        continue;
      }
      fs.cpSync(g.resolve(src), target, { recursive: true });
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  mv: (g, args) => {
    const { operands } = flagsAndOperands(args);
    if (operands.length < 2) return fail(1, `mv: missing destination file operand\n`);
    const dest = operands[operands.length - 1]!;
    const destSt = g.stat(dest);
    let err = '';
    for (const src of operands.slice(0, -1)) {
      if (!g.stat(src)) {
        err += `mv: cannot stat '${src}': No such file or directory\n`;
        continue;
      }
      const target = destSt?.isDirectory() ? g.resolve(path.posix.join(dest, path.posix.basename(src))) : g.resolve(dest);
      if (!fs.existsSync(path.dirname(target))) {
        err += `mv: cannot move '${src}' to '${dest}': No such file or directory\n`;
        continue;
      }
      fs.renameSync(g.resolve(src), target);
    }
    return { exit: err ? 1 : 0, stdout: '', stderr: err };
  },
  ls: (g, args) => {
    const { flags, operands } = flagsAndOperands(args);
    const targets = operands.length ? operands : ['/'];
    let out = '';
    let err = '';
    for (const t of targets) {
      const st = g.stat(t);
      if (!st) {
        err += `ls: cannot access '${t}': No such file or directory\n`;
        continue;
      }
      const names = st.isDirectory() ? fs.readdirSync(g.resolve(t)).sort() : [t];
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
