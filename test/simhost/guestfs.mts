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
// fails exactly as it does on a real host. Who may read, write or chown
// what follows the container's id maps (guestview.mts, guest-builtins.mts).

import fs from 'node:fs';
import path from 'node:path';

import { builtins, findInPath, flagsAndOperands, openForWrite, readAs, subjectOf } from './guest-builtins.mts';
import { ERRNO_TEXT, type GuestFs } from './guestview.mts';
import { X_OK, type Subject } from './idmap.mts';
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

export { GuestFs, type HostMount } from './guestview.mts';

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

export interface RunOptions {
  /** How a failed exec of a missing program is reported. */
  launcher: 'lxc-attach' | 'qemu-ga';
  vmid: string;
  stdin?: Buffer;
  /** Inside a shell builtins like `command` exist; as a bare exec they do not. */
  inShell?: boolean;
  /** The simulator's state directory, for programs whose state outlives one guest (a swarm, a CA). */
  root?: string;
  /** Who runs the command, in container ids (default: container root, as lxc-attach). */
  subject?: Subject;
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
    const loc = g.locate(program, { subject: subjectOf(options) });
    const st = loc.error ? undefined : loc.stat;
    if (!st || st.isDirectory()) return execFailure(options, program, st || loc.error === 'EACCES' ? 'EACCES' : 'ENOENT');
    if ((st.mode & 0o111) === 0 || !g.permits(subjectOf(options), loc.guest, st, X_OK)) return execFailure(options, program, 'EACCES');
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
    if (c === ';' || c === '>' || (c === '<' && line[i + 1] !== '<')) {
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
  stdin?: string;
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
    if (t.op === '>' || t.op === '>>' || t.op === '2>' || t.op === '2>>' || t.op === '<') {
      const target = tokens[i + 1];
      if (!target || !('word' in target)) return fail(2, `sh: syntax error near unexpected token\n`);
      const redirect = { file: target.word, append: t.op.endsWith('>>') };
      if (t.op === '<') current.stdin = target.word;
      else if (t.op.startsWith('2')) current.stderr = redirect;
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
  const subject = subjectOf(options);
  for (const { connector: conn, cmd } of steps) {
    if (cmd.argv.length === 0) continue;
    if (conn === '&&' && last.exit !== 0) continue;
    if (conn === '||' && last.exit === 0) continue;
    // The shell opens the redirections before the command runs; a failed one skips it (dash: exit 2).
    let input: Buffer | undefined;
    if (cmd.stdin !== undefined) {
      const data = readAs(g, subject, cmd.stdin);
      if (typeof data === 'string') {
        stderr += `sh: 1: cannot open ${cmd.stdin}: ${data === 'ENOENT' ? 'No such file' : ERRNO_TEXT[data]}\n`;
        last = fail(2, '');
        continue;
      }
      input = data;
    }
    const outError = cmd.stdout ? openRedirect(g, subject, cmd.stdout) : undefined;
    if (outError) {
      stderr += `sh: 1: cannot create ${cmd.stdout!.file}: ${outError}\n`;
      last = fail(2, '');
      continue;
    }
    const errError = cmd.stderr ? openRedirect(g, subject, cmd.stderr) : undefined;
    const result = runCommand(g, cmd.argv, { ...options, inShell: true, stdin: input });
    const exitCode = result.exit < 0 ? 127 : result.exit;
    let out = result.stdout;
    let err = result.stderr;
    if (cmd.stdout) {
      writeRedirect(g, cmd.stdout, out);
      out = '';
    }
    if (cmd.stderr && !errError) {
      writeRedirect(g, cmd.stderr, err);
      err = '';
    }
    stdout += out;
    stderr += err;
    last = { exit: exitCode, stdout: '', stderr: '' };
  }
  return { exit: last.exit, stdout, stderr };
}

/** Open (create or truncate) a redirection target as the subject; dash's wording when it cannot. */
function openRedirect(g: GuestFs, subject: Subject, target: { file: string; append: boolean }): string | undefined {
  if (target.file === '/dev/null') return undefined;
  const opened = openForWrite(g, subject, target.file);
  if (typeof opened === 'string') return opened === 'ENOENT' ? 'Directory nonexistent' : ERRNO_TEXT[opened];
  if (!target.append || opened.created) fs.writeFileSync(opened.loc.host, '');
  if (opened.created) g.created(subject, { ...opened.loc, stat: fs.lstatSync(opened.loc.host) });
  return undefined;
}

function writeRedirect(g: GuestFs, target: { file: string; append: boolean }, data: string): void {
  if (target.file === '/dev/null') return;
  fs.appendFileSync(g.resolve(target.file), data);
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
