// Real daemons (nginx, pebble, its mock DNS) and bounded commands (lego,
// openssl, nginx -t) for the real-component tests.
//
// Every process runs in its own process group under coreutils `timeout`, so
// it stops by itself after its lifetime even if the test process is killed
// with SIGKILL; stopping sends TERM to the whole group (nginx's workers
// included), waits a bounded time, then KILLs the group. Anything still alive
// when the test process exits is killed from the exit handler. The tools the
// tests need are checked up front, and a missing one is a failure naming
// the Debian package that provides it: nothing is skipped.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { findOnPath } from '../../lib/gateway/nginx-check.mts';

export const STREAM_MODULE_FILE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const DEFAULT_LIFETIME_S = 90;
const STOP_GRACE_MS = 3000;

// ---------------------------------------------------------------- tools

/** The executables the tests use and the Debian package of each. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  nginx: 'nginx',
  openssl: 'openssl',
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
  lego: 'lego',
  timeout: 'coreutils',
  unshare: 'util-linux',
};

export type Tools = Record<string, string>;

const SEARCH_PATH = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/**
 * Absolute paths of the named tools. Throws, naming the Debian packages to
 * install, when any is missing (or nginx's stream module is, with nginx).
 */
export function requireTools(names: string[], searchPath: string[] = SEARCH_PATH): Tools {
  const found: Tools = {};
  const missing: string[] = [];
  const packages = new Set<string>();
  for (const name of names) {
    const pkg = TOOL_PACKAGES[name];
    if (!pkg) throw new Error(`requireTools: no Debian package known for '${name}'`);
    const file = findOnPath(name, searchPath.join(path.delimiter));
    if (file) found[name] = file;
    else {
      missing.push(`${name} (Debian package ${pkg})`);
      packages.add(pkg);
    }
  }
  if (names.includes('nginx') && !fs.existsSync(STREAM_MODULE_FILE)) {
    missing.push(`${STREAM_MODULE_FILE} (Debian package libnginx-mod-stream)`);
    packages.add('libnginx-mod-stream');
  }
  if (missing.length > 0) {
    throw new Error(
      `missing for the real-component tests: ${missing.join(', ')}. ` +
        `Install with: apt-get install -y --no-install-recommends ${[...packages].join(' ')} (make deps installs every package in DEB_PACKAGES)`,
    );
  }
  return found;
}

// ---------------------------------------------------------------- environment

/** The test's environment without proxies (every connection is to loopback) and extra values. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

// ---------------------------------------------------------------- process groups

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of live) killGroup(child, 'SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function spawnGroup(cmd: string, args: string[], lifetimeS: number, env: NodeJS.ProcessEnv, stdio: ['ignore', 'pipe' | number, 'pipe' | number]): ChildProcess {
  const child = spawn('timeout', ['-k', '3', String(lifetimeS), cmd, ...args], { detached: true, env, stdio });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch {
    return true;
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  killGroup(child, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (!groupGone(pgid) && Date.now() < deadline) await delay(25);
  if (!groupGone(pgid)) {
    killGroup(child, 'SIGKILL');
    const hard = Date.now() + STOP_GRACE_MS;
    while (!groupGone(pgid) && Date.now() < hard) await delay(25);
  }
  await within(exitOf(child), STOP_GRACE_MS);
  if (!groupGone(pgid)) throw new Error(`process group ${pgid} (${child.spawnargs.join(' ')}) survived SIGKILL`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The promise's value, or undefined after ms (the timer does not outlive the race). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- daemons

export interface Daemon {
  name: string;
  pid: number;
  logFile: string;
  running(): boolean;
  /** Resolves with the exit code once the daemon has exited, or undefined after ms. */
  exited(ms: number): Promise<number | null | undefined>;
  /** The daemon's stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  name: string;
  cmd: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** Seconds after which the daemon stops by itself. */
  lifetimeS?: number;
}

/** Start a daemon (stdout and stderr to logFile) and register it with `scope`. */
export function startDaemon(scope: Scope, options: DaemonOptions): Daemon {
  const fd = fs.openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawnGroup(options.cmd, options.args, options.lifetimeS ?? DEFAULT_LIFETIME_S, options.env ?? childEnv(), ['ignore', fd, fd]);
  } finally {
    fs.closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${options.cmd})`);
  const daemon: Daemon = {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    running: () => child.exitCode === null && child.signalCode === null,
    exited: async (ms) => (await within(exitOf(child), ms))?.code,
    log: () => (fs.existsSync(options.logFile) ? fs.readFileSync(options.logFile, 'utf8') : ''),
    stop: () => stopGroup(child),
  };
  scope.defer(() => daemon.stop());
  return daemon;
}

// ---------------------------------------------------------------- bounded commands

export interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Run a command to completion, killing its whole group after timeoutMs. */
export async function runBounded(cmd: string, args: string[], options: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<CommandOutcome> {
  const started = Date.now();
  const lifetimeS = Math.ceil(options.timeoutMs / 1000) + 5;
  const child = spawnGroup(cmd, args, lifetimeS, options.env ?? childEnv(), ['ignore', 'pipe', 'pipe']);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => (stdout += chunk));
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, 'SIGKILL');
  }, options.timeoutMs);
  const { code, signal } = await exitOf(child);
  clearTimeout(timer);
  // The streams may still hold the last bytes after 'exit'.
  await within(Promise.all([streamEnd(child.stdout), streamEnd(child.stderr)]), 1000);
  // coreutils timeout answers 124 when the lifetime ran out.
  return { code, signal, stdout, stderr, timedOut: timedOut || code === 124, ms: Date.now() - started };
}

function streamEnd(stream: NodeJS.ReadableStream | null): Promise<void> {
  return new Promise((resolve) => {
    if (!stream || (stream as unknown as { readableEnded?: boolean }).readableEnded) resolve();
    else stream.once('close', () => resolve());
  });
}

// ---------------------------------------------------------------- waiting

/** Resolves once something accepts TCP on host:port; rejects after timeoutMs or when `daemon` exits. */
export async function waitForTcp(host: string, port: number, timeoutMs: number, daemon?: Daemon): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await connects(host, port)) return;
    if (daemon && !daemon.running()) throw new Error(`${daemon.name} exited before listening on ${host}:${port}:\n${tail(daemon.log())}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms${daemon ? `:\n${tail(daemon.log())}` : ''}`);
    await delay(50);
  }
}

/** True when a TCP connection to host:port succeeds within a second. */
export function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------- scope

/**
 * Everything one test starts, undone in reverse order by `close()` (in a
 * finally). `run` bounds the whole test: past the deadline it rejects, and
 * closing the scope then stops whatever the test was waiting for.
 */
export class Scope {
  private readonly undo: (() => Promise<void> | void)[] = [];

  defer(fn: () => Promise<void> | void): void {
    this.undo.push(fn);
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    while (this.undo.length > 0) {
      const fn = this.undo.pop() as () => Promise<void> | void;
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** Run `fn` with a fresh scope, failing after deadlineMs; the scope is always closed. */
export async function bounded<T>(name: string, deadlineMs: number, fn: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: not finished after ${deadlineMs / 1000} s`)), deadlineMs);
  });
  try {
    return await Promise.race([fn(scope), deadline]);
  } finally {
    clearTimeout(timer);
    await scope.close();
  }
}
